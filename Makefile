# softgrad: one set-up path. `make help` lists the targets.
# Every target creates .venv (pinned by constraints.txt) on first use; later runs reuse it.
SHELL := /bin/bash
.ONESHELL:
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SUBMISSIONS ?=
OUT ?= grading-out
JOBS ?= 2
TIMEOUT ?= 30
MEMORY ?= 2g
SHARD ?=
SHARDS ?=
ROSTER ?=
BOOK ?= _build/html
# optional arguments of make grade / grade-merge, passed on only when set
GRADE_EXTRA = $(if $(ROSTER),--roster "$(ROSTER)") --book "$(BOOK)"

PDF := _build/pdf/softgrad.pdf

.PHONY: help venv dist lab book pdf test test-fast release grade grade-merge lint bench bench-torch bench-grading lock clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 14

$(STAMP): constraints.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[book,test,grade,lab]'
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

venv: $(STAMP) ## create .venv with the pinned dependencies and softgrad (editable)

# The wheel students install (the course kit carries it). Built in an isolated environment whose
# setuptools and wheel are pinned by constraints.txt; file dates come from the last commit, so an
# unchanged tree gives a byte-identical wheel (and so an unchanged checksum in the book).
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
WHEEL := dist/softgrad-$(VERSION)-py3-none-any.whl
SDIST := dist/softgrad-$(VERSION).tar.gz
PACKAGE_FILES := $(shell find src/softgrad -name '*.py') pyproject.toml README.md LICENSE

dist: $(WHEEL) $(SDIST) ## build softgrad's pure-Python wheel and sdist into dist/

$(WHEEL) $(SDIST) &: $(STAMP) $(PACKAGE_FILES)
	rm -f dist/softgrad-*.whl dist/softgrad-*.tar.gz
	SOURCE_DATE_EPOCH=$$(git log -1 --format=%ct 2>/dev/null || echo 315532800) \
	  PIP_CONSTRAINT="$(CURDIR)/constraints.txt" $(PY) -m build --outdir dist . >/dev/null
	test -f $(WHEEL) && test -f $(SDIST)

lab: $(STAMP) ## JupyterLab in the project's environment (jupyterlab-myst renders the chapters' .md)
	$(VENV)/bin/jupyter lab

RELEASE_STAMP := exercises/release/.released
SOURCES := $(wildcard exercises/source/*/*.ipynb) exercises/nbgrader_config.py

release: book ## student notebooks into exercises/release/, and one zip per assignment into dist/assignments/
	$(PY) -m softgrad.kit assignments _build/html/kit/softgrad-course-kit.zip --out dist/assignments

# Re-released only when a source notebook (or the grading code) changed since the last release.
$(RELEASE_STAMP): $(STAMP) $(SOURCES) $(wildcard src/softgrad/grading/*.py)
	$(PY) -m softgrad.grading release
	touch $@

book: $(RELEASE_STAMP) $(WHEEL) ## build the HTML book into _build/html, with the course kit (warnings are errors)
	$(VENV)/bin/jupyter-book build . --builder html -W -n --keep-going

# The whole book as one PDF, for readers who are offline or print: Sphinx's single-page build, printed
# by headless Chromium once MathJax has typeset every formula (tools/print_pdf.py), then linked into
# the site beside the course kit, where the Start page's link points. Not part of `make test` (it
# takes minutes); tests/test_pdf.py checks it whenever it exists, and CI builds it (.ci/run).
pdf: book ## the whole book as one PDF, _build/pdf/softgrad.pdf (and the site's kit/softgrad.pdf)
	$(VENV)/bin/jupyter-book build . --builder singlehtml -W -n --keep-going
	$(PY) tools/print_pdf.py _build/singlehtml $(PDF)
	ln -f $(PDF) _build/html/kit/softgrad.pdf 2>/dev/null || cp $(PDF) _build/html/kit/softgrad.pdf

# axe-core for the browser test's accessibility audit: the npm package pinned in tests/js, installed
# from the registry with npm ci and injected into each page from this local copy (never a CDN).
AXE := tests/js/node_modules/axe-core/axe.min.js
$(AXE): tests/js/package.json tests/js/package-lock.json
	npm ci --prefix tests/js --no-audit --no-fund --loglevel=error
	touch $@

test: book $(AXE) ## run every test: package, notebooks, book build, browser (layout, axe-core), exercises, grading, the PDF if built
	$(PY) -m pytest --durations=25

test-fast: $(STAMP) ## only the package's unit tests (no notebooks, book or browser)
	$(PY) -m pytest tests -m "not book and not browser and not notebooks and not grading"

grade: $(STAMP) ## grade SUBMISSIONS=dir into OUT=grading-out (+ report.html; ROSTER=csv: LMS files; SHARD=k/n)
	@test -n "$(SUBMISSIONS)" || { echo "usage: make grade SUBMISSIONS=dir [OUT=grading-out] [JOBS=2] [TIMEOUT=30] [MEMORY=2g] [ROSTER=roster.csv] [SHARD=k/n] [BOOK=_build/html]"; exit 2; }
	$(PY) -m softgrad.grading grade "$(SUBMISSIONS)" --out "$(OUT)" --jobs $(JOBS) --timeout $(TIMEOUT) --memory $(MEMORY) $(if $(SHARD),--shard "$(SHARD)") $(GRADE_EXTRA)

grade-merge: $(STAMP) ## combine SHARDS="dir1 dir2 ..." (make grade SHARD=k/n) into OUT: grades.csv, report, LMS files
	@test -n "$(SHARDS)" || { echo "usage: make grade-merge OUT=dir SHARDS=\"dir1 dir2 ...\" [ROSTER=roster.csv] [BOOK=_build/html]"; exit 2; }
	$(PY) -m softgrad.grading merge $(SHARDS) --out "$(OUT)" $(GRADE_EXTRA)

lint: $(STAMP) ## ruff over the package, tests, benchmarks and tools: lint rules and formatting
	$(VENV)/bin/ruff check src tests benchmarks tools
	$(VENV)/bin/ruff format --check src tests benchmarks tools

bench: $(STAMP) ## run the speed benchmark and print ratios
	$(PY) benchmarks/bench_softmax.py

# PyTorch as a peer in the benchmark, in a venv of its own (torch's sympy wants another mpmath
# than the tests pin). torch 2.13.0 is the CPU build this project's machines keep on disk.
TORCH_VENV := .venv-torch
pin = $(shell grep -i '^$(1)==' constraints.txt)
$(TORCH_VENV)/.installed: constraints.txt pyproject.toml
	python3 -m venv $(TORCH_VENV)
	$(TORCH_VENV)/bin/pip install -q "$(call pin,numpy)" "$(call pin,scipy)" torch==2.13.0
	$(TORCH_VENV)/bin/pip install -q --no-deps -e .
	touch $@

bench-torch: $(TORCH_VENV)/.installed ## the speed benchmarks with PyTorch (CPU) as a peer, into benchmarks/RESULTS.md
	$(TORCH_VENV)/bin/python benchmarks/bench_softmax.py --rounds 9 --markdown benchmarks/RESULTS.md
	$(TORCH_VENV)/bin/python benchmarks/bench_linear.py --markdown benchmarks/RESULTS.md

bench-grading: $(RELEASE_STAMP) ## time grading 20 students x 6 assignments (writes benchmarks/GRADING_RESULTS.md)
	$(PY) benchmarks/bench_grading.py --write benchmarks/GRADING_RESULTS.md

lock: ## re-resolve requirements.in into constraints.txt (needs the package registry)
	rm -rf .lockenv && $(PYTHON) -m venv .lockenv
	.lockenv/bin/pip install -q -r requirements.in
	{ echo "# Pinned, resolved dependency set for Python 3.11 (make lock regenerates it from requirements.in)."; \
	  .lockenv/bin/pip freeze --all | grep -vE '^(softgrad|-e |pip==)'; } > constraints.txt
	rm -rf .lockenv

clean: ## remove build outputs (keeps .venv)
	rm -rf _build exercises/release dist tests/js/node_modules
