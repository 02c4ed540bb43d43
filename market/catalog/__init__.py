"""Products, photos, categories and GTINs."""
