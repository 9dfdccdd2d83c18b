"""Data layer: the FashionAI layout, images, imports, generated demo data, folds, caches."""
