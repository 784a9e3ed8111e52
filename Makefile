# make demo : fresh clone -> .venv -> a simulated session and a picture of it
# make test : fresh clone -> .venv -> the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.gthd-installed

.PHONY: demo test install clean perf

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/gthd simulate capture/demo --seed 0 --duration 8 --force
	$(BIN)/gthd session sheet capture/demo -o capture/demo/sheet.png
	@echo "demo: wrote capture/demo (a simulated session) and capture/demo/sheet.png"

test: $(STAMP)
	$(BIN)/python -m pytest -q

perf: $(STAMP)
	$(BIN)/python perf/simulate.py

clean:
	rm -rf $(VENV) build *.egg-info
