# The two commands of README.md.
.PHONY: serve test bench drill

serve:  ## run the all-in-one on the embedded default (SQLite, in-process bus, 127.0.0.1:8776)
	scripts/serve $(ARGS)
# ARGS go to `blockstorage serve`, e.g. make serve ARGS="--port 8777"

test:   ## run the whole test suite (installs what it needs)
	scripts/test

bench:  ## benchmarks against Cinder 29 (writes docs/benchmarks.md; ~30 min)
	scripts/system-packages && EXTRAS=server,test scripts/venv && .venv/bin/python bench/run.py

drill:  ## the whole-cloud drill, long: kill -9 one node of each tier under load; prints figures (~7 min)
	scripts/system-packages && EXTRAS=server,test scripts/venv && USERMESSAGES_DRILL=long \
	  .venv/bin/python -m pytest tests/reliability/test_cloud_drill.py -m drill -s -q -p no:cacheprovider
