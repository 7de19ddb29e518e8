# Two commands on a fresh machine: `make run` serves the IdP on the embedded defaults,
# `make test` installs what the tests need and runs them.

# The interpreter the virtualenv is made from: the first of PYTHONS that is Python 3.11 or newer
# and can make a virtualenv (`make PYTHON=python3.12` names one). The system's python3 comes
# first: Debian's (and the official Docker images') is built with profile-guided optimisation and
# link-time optimisation, which a version manager's default build (pyenv's) is not; this server
# runs 10-20% faster on it (bench/README.md, "The interpreter").
PYTHONS ?= $(or $(PYTHON),/usr/bin/python3 python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export IDP_VAR_DIR ?= var

.PHONY: run test install lint typecheck check-system check-ocr bench i18n clean

$(BIN)/python:
	@for p in $(PYTHONS); do \
	  if $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && $$p -m venv $(VENV) 2>/dev/null; \
	  then echo "virtualenv $(VENV) from $$p: $$($(BIN)/python --version)"; break; fi; \
	  rm -rf $(VENV); \
	done; test -x $(BIN)/python || { echo "no Python 3.11+ that makes a virtualenv among: $(PYTHONS)" >&2; exit 1; }
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

run: install check-ocr
	$(BIN)/idp migrate
	$(BIN)/idp demo
	$(BIN)/idp serve

# Debian packages the test suite drives: Chromium for the browser tests; tesseract (eng) and the
# OCR-B font for reading identity documents (videoid.document).
check-system: check-ocr
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium is missing: sudo apt-get install chromium" >&2; exit 1; fi; }

# Debian packages video identification reads documents with: tesseract (eng) and the OCR-B font.
check-ocr:
	@{ tesseract --list-langs 2>/dev/null | grep -qx eng \
	   && [ -f /usr/share/fonts/opentype/ocr-b/OCRB.otf ]; } || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tesseract-ocr tesseract-ocr-eng fonts-ocr-b >/dev/null; \
	  else echo "tesseract or the OCR-B font is missing: sudo apt-get install tesseract-ocr tesseract-ocr-eng fonts-ocr-b" >&2; exit 1; fi; }

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

test: install check-system lint typecheck
	$(BIN)/python -m pytest -q -p no:cacheprovider

bench: install
	$(BIN)/python bench/token_grants.py

# Re-extract translatable strings and merge them into the catalogues.
i18n: install
	$(BIN)/pybabel extract -F babel.cfg -o templates/locale/messages.pot --add-comments=Translators: .
	$(BIN)/pybabel update -i templates/locale/messages.pot -d templates/locale

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
