# The two commands a user needs: `make grade` and `make test`. Each sets up what it needs itself.
PYTHON_BOOTSTRAP ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DATA_STAMP := data_cache/MNIST/.verified
CLASSIFIER := data_cache/classifier/mnist_cnn.json

# Grading options; empty means the default declared once in autograder/__main__.py.
SUBMISSIONS ?=
OUT ?=
JOBS ?=
SANDBOX ?=
CANVAS_ASSIGNMENT ?=
CANVAS_ROSTER ?=
SCHEDULER ?=
CELL_TIMEOUT ?=
NOTEBOOK_TIMEOUT ?=
PROFILE ?=
# make worker: NWORKERS single-threaded worker processes (empty: one per core), listening on WORKER_HOST (empty: Dask's choice)
NWORKERS ?=
WORKER_HOST ?=
RUBRIC ?=
ONLY ?=
EXTENSIONS ?=
SUBMISSION_TIMES ?=
STARTER_CODE ?=
# make release: PUBLISH=yes shows the items released with the grades; PDF=no skips the PDFs
PUBLISH ?=
PDF ?=

.PHONY: grade worker release gradescope test data classifier template solution bench calibrate venv sandbox-tools seccomp-tools test-tools clean

venv: $(STAMP)
$(STAMP): requirements.txt
	$(PYTHON_BOOTSTRAP) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

# Debian packages, as command:package pairs: bubblewrap sandboxes each submission (grade, test); chromium renders the
# reports in the browser tests (test; Playwright drives it and never downloads a browser). Installed where we can
# (root with apt-get, one `apt-get update` for all), else a warning names what is missing: grading then runs with
# resource limits only (said loudly in the log and the reports) and the browser tests fail saying so.
define apt_install
	@missing=""; for pair in $(1); do command -v $${pair%%:*} >/dev/null 2>&1 || missing="$$missing $${pair#*:}"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "apt-get install$$missing"; \
	    { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; } || \
	      echo "warning: apt-get install$$missing failed"; \
	  else echo "warning: not installed:$$missing (run: apt-get install$$missing)"; fi; fi
endef

sandbox-tools: seccomp-tools
	$(call apt_install,bwrap:bubblewrap)

test-tools: seccomp-tools
	$(call apt_install,bwrap:bubblewrap chromium:chromium)

# libseccomp's Python bindings build the sandboxes' seccomp filter (autograder/execution/seccomp_filter.py); without
# them the sandboxes run without one, which grading.log and the class summary say.
seccomp-tools:
	@if ! /usr/bin/python3 -c "import seccomp" >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "apt-get install python3-seccomp"; \
	    { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-seccomp >/dev/null; } || \
	      echo "warning: apt-get install python3-seccomp failed"; \
	  else echo "warning: not installed: python3-seccomp (run: apt-get install python3-seccomp)"; fi; fi

data: $(DATA_STAMP)
$(DATA_STAMP): | $(STAMP)
	$(PY) -m autograder.lab.data --root data_cache

# The grader's own MNIST classifier (judges generated images): trained once (about 2 minutes on 2 CPU cores),
# retrained when the data or the recipe changes, otherwise only verified.
classifier: $(CLASSIFIER)
$(CLASSIFIER): autograder/lab/classifier.py $(DATA_STAMP) | $(STAMP)
	$(PY) -m autograder.lab.classifier

template: $(STAMP)
	$(PY) -m autograder.lab.template

solution: $(STAMP) $(DATA_STAMP)
	$(PY) -m autograder.lab.solution_run --profile full --out solution/executed

grade: $(STAMP) $(DATA_STAMP) $(CLASSIFIER) sandbox-tools
	$(PY) -m autograder grade $(if $(SUBMISSIONS),--submissions "$(SUBMISSIONS)") $(if $(OUT),--out "$(OUT)") \
	  $(if $(JOBS),--jobs $(JOBS)) $(if $(SANDBOX),--sandbox $(SANDBOX)) $(if $(RUBRIC),--rubric "$(RUBRIC)") \
	  $(if $(CANVAS_ASSIGNMENT),--canvas-assignment "$(CANVAS_ASSIGNMENT)") $(if $(CANVAS_ROSTER),--canvas-roster "$(CANVAS_ROSTER)") \
	  $(if $(ONLY),--only $(ONLY)) $(if $(EXTENSIONS),--extensions "$(EXTENSIONS)") \
	  $(if $(SUBMISSION_TIMES),--submission-times "$(SUBMISSION_TIMES)") $(if $(STARTER_CODE),--starter-code $(STARTER_CODE)) \
	  $(if $(SCHEDULER),--scheduler "$(SCHEDULER)") $(if $(CELL_TIMEOUT),--cell-timeout $(CELL_TIMEOUT)) \
	  $(if $(NOTEBOOK_TIMEOUT),--notebook-timeout $(NOTEBOOK_TIMEOUT)) $(if $(PROFILE),--profile "$(PROFILE)")

# A Dask worker for `make grade SCHEDULER=...` on this machine (README: "Classes larger than one machine"); it sets up
# what grading needs here, like `make grade`, then runs `dask worker` from the .venv until stopped.
worker: $(STAMP) $(DATA_STAMP) $(CLASSIFIER) sandbox-tools
	$(PY) -m autograder worker $(if $(SCHEDULER),--scheduler "$(SCHEDULER)") $(if $(NWORKERS),--nworkers $(NWORKERS)) \
	  $(if $(WORKER_HOST),--host $(WORKER_HOST))

# The student-facing pages, a PDF (Debian's chromium, as the browser tests use) and a zip per student in OUT/release/.
release: $(STAMP) test-tools
	$(PY) -m autograder release $(if $(OUT),--out "$(OUT)") $(if $(RUBRIC),--rubric "$(RUBRIC)") \
	  $(if $(filter yes,$(PUBLISH)),--publish) \
	  $(if $(filter no,$(PDF)),--no-pdf)

# Gradescope's autograder: dist/autograder.zip (setup.sh, run_autograder, the grader, the template, the classifier).
gradescope: $(STAMP) $(CLASSIFIER)
	$(PY) -m autograder.gradescope --out dist/autograder.zip

test: $(STAMP) $(DATA_STAMP) $(CLASSIFIER) test-tools
	$(PY) -m pytest -q tests

bench: $(STAMP) $(DATA_STAMP) $(CLASSIFIER) sandbox-tools
	$(PY) bench/overhead.py
	$(PY) bench/jobs_scaling.py
	$(PY) bench/sandbox_cost.py
	$(PY) bench/probe_cost.py
	$(PY) bench/cluster_scaling.py

# Every judged quantity on correct work (the reference over several seeds, the correct-but-different variants) and
# on the classic mistakes, at the GRADING profile: bench/results/calibration.json (about 20 minutes on 2 cores).
calibrate: $(STAMP) $(DATA_STAMP) $(CLASSIFIER) sandbox-tools
	$(PY) bench/calibrate.py

clean:
	rm -rf grades .pytest_cache
