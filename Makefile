.PHONY: run test check lint lock lock-upgrade bench wheel clean emr-package

run:  ## set up .venv from the local lock and run the sample chain (local Spark, the simulator)
	scripts/run.sh

test:  ## set up .venv from the test lock; lint, the whole suite with coverage floors, build, main command
	scripts/test.sh

check:  ## the fast loop: lint, then the tests that need no Spark (in .venv as it is)
	scripts/lint.sh
	.venv/bin/python -m pytest -m "not spark and not slow and not cluster" -q

lint:  ## ruff, ruff format --check, mypy, deptry, the extras check, the secret scan
	scripts/lint.sh

lock:  ## recompile requirements/*/ from pyproject.toml (keeps pins pyproject still allows)
	scripts/lock.sh

lock-upgrade:  ## recompile requirements/*/ taking the newest versions pyproject allows
	scripts/lock.sh --upgrade

bench:  ## run every benchmark (prints ratios against the baselines)
	.venv/bin/python benchmarks/processing.py
	.venv/bin/python benchmarks/inference.py

wheel:  ## the wheel and sdist in dist/
	.venv/bin/python -m build

clean:
	rm -rf .venv .venv-run dist build artefacts mlruns mlflow.db spark-warehouse coverage.json .coverage

emr-package:  ## dist/emr/: packed virtualenv (venv-pack) + fmf_job.py + step.json for EMR (EMR 7: LOCK=requirements/spark35/local.lock)
	PYTHON=.venv/bin/python scripts/emr_package.sh
