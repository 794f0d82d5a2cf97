# SIS: `make run` serves the app (with the built-in test stands when no URLs are set),
# `make lint` runs ruff and checks that models and migrations agree, `make test` runs the whole suite, `make container` builds the image (localhost/sis) with podman.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
FLASK := $(VENV)/bin/flask --app app
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: run test lint install install-dev migrate chromium office container clean

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip  # a step of its own: --require-hashes would want pip's hash too
	$(PY) -m pip install -q --require-hashes -r requirements.txt
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install -q --require-hashes -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

migrate: install
	$(FLASK) db upgrade

run: migrate
	$(PY) -m stoloto.serve --host $(HOST) --port $(PORT)

# Browser tests need Debian's Chromium; install it when missing and we are allowed to.
chromium:
	@command -v chromium >/dev/null || { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
		(apt-get update -qq && apt-get install -y -qq chromium >/dev/null) || \
		echo "chromium not found: browser tests will be skipped"; }

# The «Приложение №5» print test needs LibreOffice Writer and poppler's pdfinfo/pdftotext; fonts-liberation2 has the
# metrics of Times New Roman and Courier New, so LibreOffice breaks the page where Word would.
office:
	@{ command -v libreoffice && command -v pdfinfo && command -v pdftotext; } >/dev/null || \
		{ command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
		(apt-get update -qq && apt-get install -y -qq libreoffice-writer-nogui poppler-utils fonts-liberation2 >/dev/null) || \
		echo "libreoffice or poppler-utils not found: the appendix print test will be skipped"; }

test: install-dev chromium office
	$(PY) -m pytest -q $(PYTEST_ARGS)

# `flask db check` compares the models with a database migrated to head: a throwaway SQLite one here.
lint: install-dev
	$(VENV)/bin/ruff check .
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
		export DATABASE_URL="sqlite:///$$tmp/sis.db" SIS_INSTANCE_PATH="$$tmp/instance" \
			SIS_SCHEDULER=0 SIS_BOOTSTRAP_ADMIN=0 && \
		$(FLASK) db upgrade && $(FLASK) db check

# The image, built with podman from a local Debian base where no registry is reachable (.ci/container-setup);
# tests/container runs it when it exists.
container:
	.ci/container-setup

clean:
	rm -rf $(VENV) .pytest_cache
