"""fashiontag: clothing attribute recognition, FashionAI-style, on fastai + timm."""

__version__ = "0.1.0"
