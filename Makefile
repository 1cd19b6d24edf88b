# ShopGuard: `make demo` (set up, generate data, train, register, promote, serve) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export SHOPGUARD_HOME ?= $(CURDIR)/.shopguard
PORT ?= 3000
N_LISTINGS ?= 50000
N_MERCHANTS ?= 20000
N_SEGMENTS ?= 8000
UV_VERSION ?= 0.13.10
# uv does not read pip's configuration: pass on the local wheel folders and extra indexes pip is told about.
UV_FIND_LINKS := $(foreach links,$(PIP_FIND_LINKS),--find-links $(links))
UV_EXTRA_INDEX := $(foreach index,$(PIP_EXTRA_INDEX_URL),--extra-index-url $(index))
# Bytecode is written as modules are first imported, only for what runs (compiling the whole
# environment up front took 31 s of every fresh setup), even where the shell turns it off.
unexport PYTHONDONTWRITEBYTECODE
# Test processes (pytest-xdist, a test file per process; 0: one process).
TEST_WORKERS ?= 2
# LightGBM threads of the listing and merchant trainings (0: one per core).
TABULAR_THREADS ?= 0

.PHONY: setup demo demo-token train-demo demo-base demo-tabular demo-marketing serve test lint bench real-data-check clean

$(BIN)/.installed: pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "needs $(PYTHON) on PATH (set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	@# uv installs the pinned set in about 10 s (pip took 35 s). uv reads no pip configuration: where pip
	@# is told to use another index, pip installs, as it does where uv cannot.
	@# The CPU wheel of torch (a GPU user installs a CUDA build and onnxruntime-gpu instead).
	if [ -z "$$PIP_INDEX_URL$$PIP_NO_INDEX" ] && ! $(BIN)/pip config get global.index-url >/dev/null 2>&1 \
		&& ! $(BIN)/pip config get install.index-url >/dev/null 2>&1 \
		&& $(BIN)/pip install --quiet uv==$(UV_VERSION) \
		&& env $${PIP_CERT:+SSL_CERT_FILE=$$PIP_CERT} $(BIN)/uv pip install --quiet --python $(BIN)/python \
		$(UV_FIND_LINKS) $(UV_EXTRA_INDEX) torch==2.13.0 -c constraints.txt -e '.[dev]'; then :; else \
		echo "installing the environment with pip (about a minute): pip has an index configured, or uv could not"; \
		$(BIN)/pip install --quiet --no-compile torch==2.13.0 && \
		$(BIN)/pip install --quiet --no-compile -c constraints.txt -e '.[dev]'; fi
	touch $@

setup: $(BIN)/.installed

train-demo: setup
	@[ -d ../shared/data ] || [ -n "$$SHOPGUARD_SHARED_DATA" ] || echo "WARNING: ../shared/data not found:" \
		"the demo models are trained on synthetic text only; their cards say the real-world checks are missing."
	@# The base encoder first, alone on every core (2x faster than on one core beside other work);
	@# then two lanes: the listing and merchant models (one thread) beside false-marketing.
	$(MAKE) --no-print-directory demo-base
	$(MAKE) --no-print-directory -j2 demo-tabular demo-marketing TABULAR_THREADS=1

# The masked-LM base encoder on every core, cached in the home (skipped without ../shared/data).
demo-base: setup
	@if [ -d ../shared/data ] || [ -n "$$SHOPGUARD_SHARED_DATA" ]; then \
		$(BIN)/shopguard train base-encoder --threads 0 >/dev/null; fi

demo-tabular: setup
	$(BIN)/shopguard data generate listings --n $(N_LISTINGS) --seed 0 --out data/listings.parquet
	$(BIN)/shopguard train listing-quality --data data/listings.parquet --threads $(TABULAR_THREADS)
	$(BIN)/shopguard models promote listing-quality:candidate --force --reason "demo: model trained on the built-in data"
	$(BIN)/shopguard data generate merchants --n $(N_MERCHANTS) --seed 0 --out data/merchants.parquet
	$(BIN)/shopguard train merchant-risk --data data/merchants.parquet --links data/merchants.links.parquet \
		--threads $(TABULAR_THREADS)
	$(BIN)/shopguard models promote merchant-risk:candidate --force --reason "demo: model trained on the built-in data"

demo-marketing: setup
	$(BIN)/shopguard data generate transcripts --n $(N_SEGMENTS) --seed 0 --out data/transcripts.parquet
	@# With ../shared/data: the labelled real live-room sentences, held out by room for the
	@# thresholds and the card's headline, and a masked-LM base encoder (cached in the home).
	if $(BIN)/shopguard data live-asr --out data/live_asr.jsonl; then \
		base=$$($(BIN)/shopguard train base-encoder) && \
		$(BIN)/shopguard train false-marketing --data data/transcripts.parquet --real data/live_asr.jsonl \
			--base-model "$$base"; \
	else \
		$(BIN)/shopguard train false-marketing --data data/transcripts.parquet; \
	fi
	$(BIN)/shopguard models promote false-marketing:candidate --force --reason "demo: model trained on the built-in data"
	@# With the real rooms: whole held-out broadcasts through the enforcement policy (seconds).
	@if [ -s data/live_asr.jsonl ]; then $(BIN)/shopguard enforcement rooms || true; fi

demo: train-demo demo-token serve

# A token for the README's curl examples (scopes score, feedback, read), kept in the home.
demo-token: setup
	@[ -s $(SHOPGUARD_HOME)/demo.token ] || $(BIN)/shopguard tokens create --name demo --scopes score,feedback,read \
		--save $(SHOPGUARD_HOME)/demo.token >/dev/null
	@echo "demo token in $(SHOPGUARD_HOME)/demo.token: curl -H \"Authorization: Bearer \$$(cat $(SHOPGUARD_HOME)/demo.token)\" ..."

serve: setup
	$(BIN)/shopguard serve --port $(PORT)

test: setup
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -rs -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile --durations=15 $(PYTEST_ARGS)

bench: setup
	$(BIN)/python benchmarks/listing_throughput.py
	$(BIN)/python benchmarks/merchant_throughput.py
	$(BIN)/python benchmarks/merchant_amazon.py
	$(BIN)/python benchmarks/stream_throughput.py
	$(BIN)/python benchmarks/chaos.py
	$(BIN)/python benchmarks/batch_scaling.py --rows 200000
	$(BIN)/python benchmarks/console_queries.py

# Real-data check of the text pipeline (needs ../shared/data): train on the in-game ads
# (binary label = off_platform), evaluate on their validation file.
real-data-check: setup
	$(BIN)/shopguard train false-marketing --data ../shared/data/ingame_ads/train.txt --binary-category off_platform
	$(BIN)/shopguard evaluate false-marketing:candidate --data ../shared/data/ingame_ads/validation.txt \
		--binary-category off_platform --out bench-results/ingame_ads_eval.json

clean:
	rm -rf $(VENV) .shopguard data
