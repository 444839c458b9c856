.PHONY: run test bench lint wheel clean emr-package

run:  ## set up and run the sample chain on local Spark with the simulator
	scripts/run.sh

test:  ## set up, lint, type-check and run the whole test suite
	scripts/test.sh

bench:  ## run every benchmark (prints ratios against the baselines)
	.venv/bin/python benchmarks/processing.py
	.venv/bin/python benchmarks/inference.py

wheel:
	.venv/bin/python -m pip wheel --no-deps -w dist .

clean:
	rm -rf .venv dist build artefacts mlruns mlflow.db spark-warehouse

emr-package:  ## dist/emr/: packed virtualenv (venv-pack) + fmf_job.py + step.json for EMR
	PYTHON=.venv/bin/python scripts/emr_package.sh
