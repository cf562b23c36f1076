# dqn-harness: every command bootstraps .venv from requirements.txt on first use.
#   make experiment NAME=catch_dense [STEPS=n] [SEED=s] [SET="key=value ..."] [RUNS=dir]
#   make list | make test | make test-all
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
RUNS ?= runs

# Optional arguments, passed on only when given.
RUN_ARGS = $(if $(STEPS),--steps "$(STEPS)") $(if $(SEED),--seed "$(SEED)") \
           $(foreach kv,$(SET),--set '$(kv)') --runs-dir "$(RUNS)"

.PHONY: experiment list test test-all venv clean-venv

# The stamp is newer than requirements.txt once the install succeeded; a changed requirements.txt
# reinstalls. The venv is made by the interpreter named by PYTHON (3.11 is what the pins are for).
$(STAMP): requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	@touch $@

venv: $(STAMP)

experiment: $(STAMP)
	@$(PY) -m harness run "$(NAME)" $(RUN_ARGS)

list: $(STAMP)
	@$(PY) -m harness list

# The default suite: everything not marked slow (a few minutes on 2 cores).
test: $(STAMP)
	$(PY) -m pytest -m "not slow" -q

# Everything, slow tests included.
test-all: $(STAMP)
	$(PY) -m pytest -q

clean-venv:
	rm -rf $(VENV)
