"""Pure feature code shared by training and serving: schemas, text normalization,
lexicons and versioned feature sets. No I/O, no bentoml, no other ShopGuard package."""
