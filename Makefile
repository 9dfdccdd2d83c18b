# fashiontag: every target calls one `fashiontag` CLI command. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
FT     := $(BIN)/fashiontag

# Variables kept by every target (see README).
DATA   ?= data/demo/train
TEST   ?= data/demo/test
CAT    ?= all
CONFIG ?=
FOLDS  ?= all
EXP    ?=
OUT    ?=
RUN    ?=
RUNS   ?=
GPUS   ?= 1
# train-ddp: one process per visible GPU (CUDA_VISIBLE_DEVICES honoured), asked only when that target runs.
NPROC  ?= $(shell $(BIN)/python -c "import torch; print(torch.cuda.device_count())" 2>/dev/null || echo 0)
SET    ?=

cfg    = $(if $(CONFIG),--config $(CONFIG))
# Fashion-MNIST's idx files (Debian package dataset-fashion-mnist): installed with apt-get when missing and root.
FMNIST_IDX := /usr/share/datasets/fashion-mnist
fmnist_data = test -e $(FMNIST_IDX)/t10k-labels-idx1-ubyte.gz || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get install -y dataset-fashion-mnist || { apt-get update && apt-get install -y dataset-fashion-mnist; }; \
	  else echo "Fashion-MNIST is missing from $(FMNIST_IDX): install the Debian package dataset-fashion-mnist \
	(sudo apt-get install dataset-fashion-mnist), or pass SET=fmnist.idx_dir=DIR with the four idx files" >&2; exit 2; fi; }
exp    = $(if $(EXP),--exp $(EXP))
sets   = $(foreach s,$(SET),--set $(s))

.PHONY: help install demo clothing test lint data demo-data check-data import folds train train-ddp predict stack ensemble report submit \
        validate score tag worn worn-train-tiny bench gpu-check detect-train fmnist bench-fmnist detect-convert detect embed import-idx

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "; printf "Usage: make TARGET [DATA=.. TEST=.. CAT=.. CONFIG=.. FOLDS=.. EXP=.. OUT=..]\n\n"} \
	     /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

install: ## create .venv and install fashiontag with its pinned dependencies (offline-capable)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,lite,tflite]'

demo: ## the whole pipeline on generated data with the embedded backbone, ending in a scored submission
	$(FT) demo $(sets)

test: ## run the fast test suite (CPU, no network)
	$(BIN)/python -m pytest -m "not slow" -q

lint: ## ruff, then the import contract (layers, no cycles) in pyproject.toml
	$(BIN)/ruff check src tests scripts
	$(BIN)/lint-imports

clothing: ## real photos: import clothing-small (or SRC="dirs"), 5 folds, train CONFIG (clothing_cpu), TTA, stack, blend, report; UNLABELLED=dir adds a submission
	$(FT) clothing $(SRC) $(cfg) $(sets) $(if $(UNLABELLED),--unlabelled $(UNLABELLED)) $(if $(OUT),--out $(OUT)) $(if $(WORKDIR),--workdir $(WORKDIR))

demo-data: ## generate the demo dataset into data/demo (DATA=... to change)
	$(FT) make-demo-data data/demo

check-data: ## decode every image DATA (and TEST, if it exists) lists; SKIP_BAD=1 lists all problems
	$(FT) check-data $(DATA) $(if $(wildcard $(TEST)/Tests/question.csv),--test $(TEST)) $(if $(SKIP_BAD),--skip-bad)

import: ## import class folders: make import SRC=folder DST=root ATTR=key [UNLABELLED=1]
	$(FT) import-folders $(SRC) $(DST) --attr $(ATTR) $(if $(UNLABELLED),--unlabelled)

folds: ## write folds/<dataset>.csv for DATA (refuses to overwrite; FORCE=1 to replace)
	$(FT) folds --data $(DATA) $(if $(K),--k $(K)) $(if $(FORCE),--force)

train: ## train CAT on DATA with CONFIG, FOLDS (e.g. 0,1 or all), EXP; GPUS=N runs jobs in parallel
	$(FT) train --data $(DATA) --cat $(CAT) --folds $(FOLDS) $(cfg) $(exp) $(sets) --gpus $(GPUS)

train-ddp: ## one run data-parallel (DDP) via accelerate launch, one process per visible GPU (NPROC=N to choose), e.g. FOLDS=0 (docs/MULTI_GPU.md)
	@if [ "$(NPROC)" -lt 1 ] 2>/dev/null || [ -z "$(NPROC)" ]; then \
	  echo "make train-ddp: no visible CUDA GPU; NPROC=N runs N processes (on CPUs: gloo, --set train.device=cpu)" >&2; \
	  exit 2; fi
	$(BIN)/accelerate launch $(if $(filter-out 0 1,$(NPROC)),--multi_gpu) --num_processes $(NPROC) --num_machines 1 \
	  --mixed_precision no \
	  --dynamo_backend no $(FT) train --data $(DATA) --cat $(CAT) --folds $(FOLDS) $(cfg) $(exp) $(sets)

predict: ## predict TEST with every fold of EXP (TTA from config)
	$(FT) predict --exp $(EXP) --test $(TEST) --cat $(CAT) $(sets)

stack: ## XGBoost head on penultimate features of EXP's folds
	$(FT) stack --exp $(EXP) --test $(TEST) --cat $(CAT) $(sets)

ensemble: ## blend RUNS="a b c" from their out-of-fold files into EXP
	$(FT) ensemble --runs $(RUNS) $(exp) --cat $(CAT) $(sets)

report: ## cross-validation report of every run: reports/cv_report.md
	$(FT) report $(if $(RUNS),--runs $(RUNS)) $(if $(OUT),--out $(OUT))

submit: ## write a validated FashionAI CSV from RUN for TEST into OUT (refuses to overwrite; FORCE=1 to replace)
	$(FT) submit --run $(RUN) --test $(TEST) $(if $(OUT),--out $(OUT)) $(if $(FORCE),--force)

validate: ## validate the submission OUT against TEST's question.csv
	$(FT) validate-submission $(OUT) --questions $(TEST)/Tests/question.csv

score: ## score the submission OUT against ANSWERS (a label.csv)
	$(FT) score $(OUT) --answers $(ANSWERS)

tag: ## tag images: make tag RUN=... IMAGES=dir
	$(FT) tag $(IMAGES) --run $(RUN)

worn: ## YOLO hanger-vs-worn split file of DATA: runs/worn/<dataset>.csv (SET=worn.weights=tiny offline; FORCE=1 redo; REVIEW=N sheets of the N least certain calls)
	$(FT) worn --data $(DATA) $(cfg) $(sets) $(if $(FORCE),--force) $(if $(REVIEW),--review $(REVIEW))

worn-train-tiny: ## train (or reuse) the tiny person detector on generated figures; prints its weights path (worn.weights)
	$(FT) worn-train-tiny

bench: ## throughput benchmark of the real configs: bare model vs project pipeline vs plain DataLoader
	$(BIN)/python scripts/bench.py $(BENCH_ARGS)

gpu-check: ## GPU acceptance: GPU tests, bench, real-photo fine-tune -> reports/gpu_check.{json,md} (< 8 min H100/H200; reduced < 2 min on a CPU)
	$(BIN)/python scripts/gpu_check.py $(GPU_CHECK_ARGS)

detect-train: ## train an ultralytics clothing detector on a YOLO dataset (DATA=data.yaml)
	$(FT) detect-train --data $(DATA) $(cfg) $(sets)

fmnist: ## Fashion-MNIST table: 1-, 3-, 4-conv CNNs plain then augmented, test scores, reports/fmnist.md (CONFIG=fmnist_best: one config)
	@$(if $(findstring fmnist.idx_dir,$(SET)),true,$(fmnist_data))
	$(FT) fmnist $(cfg) $(sets)

bench-fmnist: ## Fashion-MNIST epoch: the project's in-memory training vs a bare PyTorch loop (BENCH_ARGS="--aug --out F.json")
	$(BIN)/python scripts/bench_fmnist.py $(BENCH_ARGS)

import-idx: ## Fashion-MNIST idx files -> FashionAI layout: make import-idx SRC=/usr/share/datasets/fashion-mnist DST=data/fmnist
	$(FT) import-idx $(SRC) $(DST)

detect-convert: ## annotations -> YOLO dataset: make detect-convert FORMAT=voc|dataturks SRC=... OUT=... [IMAGES=dir]
	$(FT) detect-convert $(FORMAT) $(SRC) $(OUT) $(if $(IMAGES),--images $(IMAGES))

detect: ## tag garments with a detector: make detect IMAGES=dir WEIGHTS=runs/detect/<exp>/weights/best.pt [OUT=dir]
	$(FT) detect $(IMAGES) --weights $(WEIGHTS) $(if $(OUT),--out $(OUT)) $(sets)

embed: ## embeddings + TensorBoard projector files + PCA/t-SNE plots: make embed RUN=runs/<exp> IMAGES=root
	$(FT) embed $(RUN) --images $(IMAGES) $(if $(OUT),--out $(OUT))
