# The two commands of README.md.
.PHONY: serve test

serve:  ## run the service on the embedded default (SQLite, 127.0.0.1:8776)
	scripts/serve

test:   ## run the whole test suite (installs what it needs)
	scripts/test
