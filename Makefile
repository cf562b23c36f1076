# dqn-harness: every command bootstraps .venv on first use (the project, editable, under the lock requirements.txt).
#   make experiment NAME=catch_dense [STEPS=n] [SEED=s] [SET="key=value ..."] [RUNS=dir]
#   make list | make test | make test-all
#   make compare NAMES="a b" [SEEDS=3] [STEPS=n] [WORKERS=k] [SET=...] [RUNS=dir] [OUT=dir] | make plot RUN="run_dir ..."
#   make experiment NAME=<name> RESUME=<run dir> [STEPS=total] | make play RUN=<run dir> [EPISODES=n] [SEED=s] [GIF=out.gif] [ENV_KWARGS=json] [MEMORYLESS=1]
#   make runs [RUNS=dir] | make tensorboard [RUNS=dir] [PORT=6006]
#   make sweep NAMES="a b" [SEEDS=5] [STEPS=n] [WORKERS=k] [BACKEND=local|ray] [SET=...] [RUNS=dir] | make ray-deps | make bench-sweep
#   make tune NAME=<name> [TRIALS=n] [WORKERS=k] [STEPS=n] [STORAGE=url] [STUDY=name] [PRUNER=p] [SAMPLER=s] [SET=...] [RUNS=dir]
#   make tune-report STUDY=<name> [STORAGE=url] [RUNS=dir]
#   make baseline ENV_ID=Cave-v0 [EPISODES=n] [SEED=s] [ENV_KWARGS=json] | make bench-memory [JSON=out.json]
#   make bench-checkpoint [TRANSITIONS=100000] [REPEATS=3] [DIR=dir] [JSON=out.json]
#   make benchmark [GAMES="CartPole-v1 ..."] [SEEDS=5] [STEPS=n] [WORKERS=k] [SET=...] [RUNS=dir] [OUT=docs]
#   make bench [REPS=3] | make bench-step NAME=cave_conv [SET=...] | make lint | make format | make type
# Any target: EXPERIMENTS=dir adds a folder of your own experiment modules.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
RUNS ?= runs

# Optional arguments, passed on only when given.
RUN_ARGS = $(if $(STEPS),--steps "$(STEPS)") $(if $(SEED),--seed "$(SEED)") \
           $(foreach kv,$(SET),--set '$(kv)') --runs-dir "$(RUNS)" $(if $(RESUME),--resume "$(RESUME)")

.PHONY: experiment list test test-all venv clean-venv

# Your own experiments (a folder of modules defining EXPERIMENT), for every command and the runs it starts.
ifneq ($(EXPERIMENTS),)
export DQN_HARNESS_EXPERIMENTS := $(abspath $(EXPERIMENTS))
endif

# The project is installed into .venv in editable mode, with its dev tools, under the lock
# (requirements.txt as constraints). The stamp is newer than the lock and pyproject.toml once the
# install succeeded; a change to either reinstalls. The venv is made by the interpreter named by
# PYTHON (3.11 is what the pins are for).
$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c requirements.txt -e ".[dev]"
	@touch $@

venv: $(STAMP)

experiment: $(STAMP)
	@$(PY) -m harness run "$(NAME)" $(RUN_ARGS)

list: $(STAMP)
	@$(PY) -m harness list

# make compare NAMES="catch_dense catch_graves" [SEEDS=3] [STEPS=n] [WORKERS=k] [SET="k=v ..."] [RUNS=dir] [OUT=dir]
# trains the missing runs, k at a time (reusing finished ones under RUNS), then writes compare.png/.md/.csv.
.PHONY: compare plot
compare: $(STAMP)
	@$(PY) -m harness compare $(NAMES) --seeds "$(or $(SEEDS),3)" $(if $(STEPS),--steps "$(STEPS)") \
		$(if $(WORKERS),--workers "$(WORKERS)") \
		$(foreach kv,$(SET),--set '$(kv)') --runs-dir "$(RUNS)" $(if $(OUT),--out "$(OUT)")

# make plot RUN="runs/catch_dense/<stamp>-seed0 [more run dirs or experiment folders]" [OUT=file.png]
plot: $(STAMP)
	@$(PY) -m harness plot $(RUN) $(if $(OUT),--out "$(OUT)")

# make play RUN=runs/catch_dense/<stamp>-seed0 [EPISODES=n] [SEED=s] [GIF=out.gif] [ENV_KWARGS='{"flicker":0.5}'] [MEMORYLESS=1]:
# the saved agent, greedy, with the run's own evaluation seed and episodes unless given (reproduces
# its score); ENV_KWARGS plays a variant of its game (over the run's own env_kwargs); MEMORYLESS=1: a
# recurrent agent with its LSTM state zeroed before every action.
.PHONY: play runs tensorboard
play: $(STAMP)
	@$(PY) -m harness play "$(RUN)" $(if $(EPISODES),--episodes "$(EPISODES)") \
		$(if $(SEED),--seed "$(SEED)") $(if $(GIF),--gif "$(GIF)") \
		$(if $(ENV_KWARGS),--env-kwargs '$(ENV_KWARGS)') $(if $(filter 1 true yes,$(MEMORYLESS)),--memoryless)

# make runs [RUNS=dir]: past runs, newest first.
runs: $(STAMP)
	@$(PY) -m harness runs --runs-dir "$(RUNS)"

# make tensorboard [RUNS=dir] [PORT=6006] [TB_HOST=localhost]: serve every run's tensorboard/ folder
# (TB_HOST=0.0.0.0 to reach it from another machine).
PORT ?= 6006
TB_HOST ?= localhost
tensorboard: $(STAMP)
	@test -d "$(RUNS)" || { echo "error: RUNS=$(RUNS) is not a directory; expected the folder runs are saved in" >&2; exit 2; }
	@$(VENV)/bin/tensorboard --logdir "$(RUNS)" --port "$(PORT)" --host "$(TB_HOST)"

# make sweep NAMES="catch_dense catch_graves" [SEEDS=5] [STEPS=n] [WORKERS=k] [BACKEND=local|ray]
#            [SET="k=v ..."] [RUNS=dir]: one run per (experiment, seed), k at a time (default: one per
# core), then a table and comparison.png in RUNS/sweeps/<stamp>/. BACKEND=ray runs them as Ray tasks
# (on the cluster at RAY_ADDRESS if set, else on a Ray started here); its first use installs
# requirements-ray.txt (the same stamp scheme as requirements.txt).
.PHONY: sweep ray-deps
RAY_STAMP := $(VENV)/.installed-ray
$(RAY_STAMP): requirements-ray.txt $(STAMP)
	$(PY) -m pip install --quiet -c requirements.txt -c requirements-ray.txt -e ".[dev,ray]"
	@touch $@

ray-deps: $(RAY_STAMP)

sweep: $(STAMP) $(if $(filter ray,$(BACKEND)),$(RAY_STAMP))
	@$(PY) -m harness sweep $(NAMES) --seeds "$(or $(SEEDS),5)" $(if $(STEPS),--steps "$(STEPS)") \
		$(if $(WORKERS),--workers "$(WORKERS)") --backend "$(or $(BACKEND),local)" \
		$(foreach kv,$(SET),--set '$(kv)') --runs-dir "$(RUNS)"

# make benchmark [GAMES="CartPole-v1 Acrobot-v1"] [SEEDS=5] [STEPS=n] [WORKERS=k] [SET="k=v ..."] [RUNS=dir] [OUT=docs]:
# the classic-control suite (cartpole_dqn, acrobot_dqn, mountaincar_dqn, lunarlander_dqn), every seed,
# k runs at once through the sweep executor (finished identical runs under RUNS are reused), then
# OUT/benchmark.md, .csv and .png beside rl-baselines3-zoo's and CleanRL's published results.
.PHONY: benchmark
benchmark: $(STAMP)
	@$(PY) -m harness benchmark $(GAMES) --seeds "$(or $(SEEDS),5)" $(if $(STEPS),--steps "$(STEPS)") \
		$(if $(WORKERS),--workers "$(WORKERS)") $(foreach kv,$(SET),--set '$(kv)') --runs-dir "$(RUNS)" \
		--out "$(or $(OUT),docs)"

# make tune NAME=catch_dense [TRIALS=20] [WORKERS=1] [STEPS=n] [STORAGE=postgresql://...] [STUDY=name]
#           [PRUNER=median|halving|none|threshold:X] [SAMPLER=tpe|random|grid] [SET="k=v ..."] [RUNS=dir]:
# an Optuna study over the experiment's SEARCH_SPACE (else the default DQN space), maximising the
# validation score; each trial an ordinary run, WORKERS at a time with the cores split between them.
# The study lives in RUNS/tune/<study>/ (SQLite unless STORAGE names a PostgreSQL database); the same
# command again continues it. make tune-report STUDY=name [STORAGE=url] [RUNS=dir]: its table,
# best SET line and figures, at any time.
.PHONY: tune tune-report
tune: $(STAMP)
	@$(PY) -m harness tune "$(NAME)" $(if $(TRIALS),--trials "$(TRIALS)") $(if $(WORKERS),--workers "$(WORKERS)") \
		$(if $(STEPS),--steps "$(STEPS)") $(if $(STORAGE),--storage "$(STORAGE)") $(if $(STUDY),--study "$(STUDY)") \
		$(if $(PRUNER),--pruner "$(PRUNER)") $(if $(SAMPLER),--sampler "$(SAMPLER)") \
		$(foreach kv,$(SET),--set '$(kv)') --runs-dir "$(RUNS)"

tune-report: $(STAMP)
	@$(PY) -m harness tune-report "$(STUDY)" $(if $(STORAGE),--storage "$(STORAGE)") --runs-dir "$(RUNS)"

# make bench-sweep [STEPS=6000] [REPEATS=3] [JSON=out.json]: 4 catch_dense runs with WORKERS=2 vs 1,
# alternating; median wall times and their ratio (target <= 0.65).
.PHONY: bench-sweep
bench-sweep: $(STAMP)
	@$(PY) -m bench.sweep --steps "$(or $(STEPS),6000)" --repeats "$(or $(REPEATS),3)" \
		$(if $(JSON),--json "$(JSON)")

# make baseline ENV_ID=Cave-v0 [EPISODES=n] [SEED=s] [ENV_KWARGS='{"size":16}']: the scripted players' mean
# scores (random and perfect for Catch-v0, random and heuristic for Cave-v0).
.PHONY: baseline bench-memory bench-checkpoint
baseline: $(STAMP)
	@$(PY) -m harness baseline "$(ENV_ID)" $(if $(EPISODES),--episodes "$(EPISODES)") \
		$(if $(SEED),--seed "$(SEED)") $(if $(ENV_KWARGS),--env-kwargs '$(ENV_KWARGS)')

# make bench-memory [JSON=out.json]: RSS added by a full 100,000-transition cave_conv replay memory
# (RingMemory and SequentialMemory, 3 fresh processes each; target <= 400 MB).
bench-memory: $(STAMP)
	@$(PY) -m bench.memory $(if $(JSON),--json "$(JSON)")

# make bench-checkpoint [TRANSITIONS=100000] [REPEATS=3] [DIR=dir] [JSON=out.json]: the size and the write
# and load times of a cave_conv checkpoint with its full replay memory, and without it (checkpoint_memory=false).
bench-checkpoint: $(STAMP)
	@$(PY) -m bench.checkpoint --transitions "$(or $(TRANSITIONS),100000)" --repeats "$(or $(REPEATS),3)" \
		$(if $(DIR),--dir "$(DIR)") $(if $(JSON),--json "$(JSON)")

# make bench [REPS=3]: catch_dense and cave_conv on keras-rl's stock DQNAgent, on the code of the speed
# targets' base commit (base, from git history), on the fast path with oneDNN off (fast-old) and with
# today's defaults (fast), with prioritized replay and with 3-step returns, and cave_rainbow and
# cave_drqn on the fast path, alternating, REPS runs each (median env/train steps/s, ratio, peak RSS),
# plus a memory-flatness check; writes bench/results.md and bench/results.json (about 30 minutes on
# 2 cores, alone).
.PHONY: bench
bench: $(STAMP)
	@$(PY) -m bench.speed --reps "$(or $(REPS),3)"

# make bench-step NAME=cave_conv [SET="k=v ..."]: what one fast-path train step costs, piece by piece
# (act, target and online passes on the next states, loss, whole step), median milliseconds.
.PHONY: bench-step
bench-step: $(STAMP)
	@$(PY) -m bench.train_step "$(or $(NAME),cave_conv)" $(foreach kv,$(SET),--set '$(kv)')

# The default suite: everything not marked slow. TEST_WORKERS pytest-xdist processes share it: on 2
# idle cores one process took 6 min 5 s, two took 3 min 43 s (most tests wait on a subprocess or a
# small graph, so one process used only 1.1 cores); with the tests added since, 4 min 20 s.
# TEST_WORKERS=0 runs it in this process.
TEST_WORKERS ?= 2
test: $(STAMP)
	$(PY) -m pytest -m "not slow" -q -n $(TEST_WORKERS)

# The gates CI runs before the tests: ruff (lint, format check, import order), import-linter (the
# layers of harness/ and its TensorFlow-free core) and mypy.
.PHONY: lint format type
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

type: $(STAMP)
	$(VENV)/bin/mypy

# Everything, slow tests included.
test-all: $(STAMP)
	$(PY) -m pytest -q -n $(TEST_WORKERS)

clean-venv:
	rm -rf $(VENV)
