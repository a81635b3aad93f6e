# realgap: `make demo` runs the main job on the embedded default; `make test` runs the tests.
# Both install what a fresh Debian + Python 3.11 machine lacks first (idempotent, fast when
# everything is already there).
PY ?= python3
PIP := $(PY) -m pip
OUT ?= out/demo
APT_PACKAGES := libegl1 libegl-mesa0 libgl1-mesa-dri chromium
export MUJOCO_GL ?= egl
export PYOPENGL_PLATFORM ?= egl

.PHONY: install system-deps python-deps demo test test-slow bench lint

install: system-deps python-deps

# Headless rendering (EGL through Mesa's software renderer) and Chromium for report tests.
system-deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages: $$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

python-deps:
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -c constraints.txt -e ".[all]"

demo: install
	$(PY) -m realgap.cli demo --out $(OUT)

test: install
	$(PY) -m pytest -q

test-slow: install
	$(PY) -m pytest -q -m slow

bench: install
	$(PY) benchmarks/run_all.py

lint:
	$(PY) -m ruff check src tests benchmarks
	$(PY) -m mypy  # the modules listed in pyproject's [tool.mypy] files
