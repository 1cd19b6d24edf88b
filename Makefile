# ShopGuard: `make demo` (set up, generate data, train, register, promote, serve) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export SHOPGUARD_HOME ?= $(CURDIR)/.shopguard
PORT ?= 3000
N_LISTINGS ?= 50000
N_MERCHANTS ?= 20000

.PHONY: setup demo train-demo serve test lint bench clean

$(BIN)/.installed: pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "needs $(PYTHON) on PATH (set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# The CPU wheel of torch (a GPU user installs a CUDA build and onnxruntime-gpu instead).
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

setup: $(BIN)/.installed

train-demo: setup
	$(BIN)/shopguard data generate listings --n $(N_LISTINGS) --seed 0 --out data/listings.parquet
	$(BIN)/shopguard train listing-quality --data data/listings.parquet
	$(BIN)/shopguard models promote listing-quality:candidate --reason "demo: model trained on the built-in data"
	$(BIN)/shopguard data generate merchants --n $(N_MERCHANTS) --seed 0 --out data/merchants.parquet
	$(BIN)/shopguard train merchant-risk --data data/merchants.parquet --links data/merchants.links.parquet
	$(BIN)/shopguard models promote merchant-risk:candidate --reason "demo: model trained on the built-in data"

demo: train-demo serve

serve: setup
	$(BIN)/shopguard serve --port $(PORT)

test: setup
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

bench: setup
	$(BIN)/python benchmarks/listing_throughput.py
	$(BIN)/python benchmarks/merchant_throughput.py
	$(BIN)/python benchmarks/merchant_amazon.py

clean:
	rm -rf $(VENV) .shopguard data
