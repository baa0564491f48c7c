# The two commands of README.md.
.PHONY: serve test bench

serve:  ## run the all-in-one on the embedded default (SQLite, in-process bus, 127.0.0.1:8776)
	scripts/serve $(ARGS)
# ARGS go to `blockstorage serve`, e.g. make serve ARGS="--port 8777"

test:   ## run the whole test suite (installs what it needs)
	scripts/test

bench:  ## benchmarks against Cinder 29 (writes docs/benchmarks.md; ~30 min)
	scripts/system-packages && EXTRAS=server,test scripts/venv && .venv/bin/python bench/run.py
