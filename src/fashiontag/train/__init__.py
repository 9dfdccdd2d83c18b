"""Training: fastai learner, schedules, resume, per-fold runner."""
