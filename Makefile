# The two commands of README.md.
.PHONY: serve test

serve:  ## run the all-in-one on the embedded default (SQLite, in-process bus, 127.0.0.1:8776)
	scripts/serve

test:   ## run the whole test suite (installs what it needs)
	scripts/test
