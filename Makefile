# The two commands a newcomer needs: `make run` and `make test`. Both create .venv when missing.
# `make run` writes the report (figures and report.md) into out/; `make quick` is its short version.
# `make docs` builds the documentation (docs/_build/html) with warnings as errors; `make test`
# builds it first. `make lint` runs ruff (lint and format check) and mypy.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
JOBS   ?= 2

.PHONY: run quick summary test test-slow regenerate check bench clean tex latex docs lint

# Installing also compiles the common entry points into Numba's disk cache (`fieldgen warm-cache`,
# about 1-2 minutes of CPU once), so `make run` and `make test` load them instead of compiling
# them in each process that needs them; a failure there is only a warning (the first calls then
# compile as usual).
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,distributed]'
	$(BIN)/fieldgen warm-cache || echo "warning: fieldgen warm-cache failed; first calls will compile"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/fieldgen regenerate
	$(BIN)/fieldgen report --no-regenerate --out out

quick: $(STAMP)
	$(BIN)/fieldgen regenerate
	$(BIN)/fieldgen report --no-regenerate --quick --out out

summary: $(STAMP)
	$(BIN)/fieldgen summary

test: $(STAMP) tex docs
	$(BIN)/python -m pytest -q -m "not slow" -n $(JOBS) --dist loadfile

# Optional extras, each installed by the target that needs it (stamps: .venv/.docs, .venv/.lint).
$(VENV)/.docs: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,docs]'
	touch $@

$(VENV)/.lint: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,lint]'
	touch $@

# Warnings are errors (-W) and every one is reported (--keep-going); -E: no stale pickles.
docs: $(VENV)/.docs
	$(BIN)/python -m sphinx -W --keep-going -E -q -b html docs docs/_build/html

lint: $(VENV)/.lint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy fieldgen

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

regenerate: $(STAMP)
	$(BIN)/fieldgen regenerate

# The full check: generated/ against a fresh build (minutes). The fast `--check` trusts the banners,
# which a body edited together with its content-hash line would pass.
check: $(STAMP)
	$(BIN)/fieldgen regenerate --check --full

# pdflatex for the LaTeX compile test: installed from Debian when missing (as root or with
# passwordless sudo). Never fails by itself: without TeX the compile test fails and says why.
tex:
	@command -v pdflatex >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then sudo=""; \
	  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo -n"; \
	  else sudo=none; fi; \
	  if [ "$$sudo" != none ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing texlive-latex-base (pdflatex) for the LaTeX compile test"; \
	    $$sudo apt-get update -qq && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      --no-install-recommends texlive-latex-base >/dev/null; \
	  fi; \
	  command -v pdflatex >/dev/null 2>&1 || echo "warning: no pdflatex and it could not be" \
	    "installed (apt-get install texlive-latex-base); the LaTeX compile test will fail"; }

latex: $(STAMP)
	$(BIN)/fieldgen latex -o derivations.tex --pdf

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_kernel.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache derivations.tex derivations.pdf docs/_build docs/_generated
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
