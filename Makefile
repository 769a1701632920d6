# The two commands a user needs: `make grade` and `make test`. Each sets up what it needs itself.
PYTHON_BOOTSTRAP ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DATA_STAMP := data_cache/MNIST/.verified

# Grading options; empty means the default declared once in autograder/__main__.py.
SUBMISSIONS ?=
OUT ?=
JOBS ?=
SANDBOX ?=

.PHONY: grade test data template solution bench venv sandbox-tools clean

venv: $(STAMP)
$(STAMP): requirements.txt
	$(PYTHON_BOOTSTRAP) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

# bubblewrap sandboxes each submission; installed where we can (root with apt), else grading falls back loudly.
sandbox-tools:
	@command -v bwrap >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq >/dev/null && apt-get install -y -qq bubblewrap >/dev/null) || \
	  echo "warning: bubblewrap (bwrap) is not installed; submissions will run with resource limits only"; }

data: $(DATA_STAMP)
$(DATA_STAMP): | $(STAMP)
	$(PY) -m autograder.data --root data_cache

template: $(STAMP)
	$(PY) -m autograder.template

solution: $(STAMP) $(DATA_STAMP)
	$(PY) -m autograder.solution_run --profile full --out solution/executed

grade: $(STAMP) $(DATA_STAMP) sandbox-tools
	$(PY) -m autograder grade $(if $(SUBMISSIONS),--submissions "$(SUBMISSIONS)") $(if $(OUT),--out "$(OUT)") \
	  $(if $(JOBS),--jobs $(JOBS)) $(if $(SANDBOX),--sandbox $(SANDBOX))

test: $(STAMP) $(DATA_STAMP) sandbox-tools
	$(PY) -m pytest -q tests

bench: $(STAMP) $(DATA_STAMP) sandbox-tools
	$(PY) bench/overhead.py
	$(PY) bench/jobs_scaling.py

clean:
	rm -rf grades .pytest_cache
