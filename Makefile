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

# The demo captures the simulated rig through the capture engine (unpaced), checks the
# session, and draws it. capture/demo is the demo's own folder: it is replaced each time.
demo: $(STAMP)
	rm -rf capture/demo
	$(BIN)/gthd capture capture/demo --camera sim --tracker sim --seed 0 --duration 8 --speed 0
	$(BIN)/gthd session check capture/demo
	$(BIN)/gthd session sheet capture/demo -o capture/demo/sheet.png
	@echo "demo: wrote capture/demo (a session captured from the simulated rig) and capture/demo/sheet.png"

test: $(STAMP)
	$(BIN)/python -m pytest -q

perf: $(STAMP)
	$(BIN)/python perf/simulate.py
	$(BIN)/python perf/capture.py

clean:
	rm -rf $(VENV) build *.egg-info
