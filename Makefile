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

# The demo runs the whole chain on the simulated rig: it captures the rig through the
# capture engine (unpaced), checks the session, draws it, calibrates it (intrinsics from
# its board views, extrinsics and clock offset from its simulated clicks, with the errors
# against the truth), checks its labels (gthd qa: capture/demo/qa/), builds the HDF5
# dataset and its contact sheet, then trains and
# scores the paper's models and baselines (quick profile) and prints the leaderboard.
# The demo's own outputs are replaced each time.
DEMO_SECONDS ?= 60
demo: $(STAMP)
	rm -rf capture/demo calibration/demo benchmark/datasets/demo.h5 benchmark/runs/demo-quick
	$(BIN)/gthd capture capture/demo --camera sim --tracker sim --seed 0 --duration $(DEMO_SECONDS) --speed 0
	$(BIN)/gthd session check capture/demo
	$(BIN)/gthd session sheet capture/demo -o capture/demo/sheet.png
	$(BIN)/gthd calibrate --click capture/demo --clicks capture/demo/clicks_simulated.jsonl -o calibration/demo
	$(BIN)/gthd qa capture/demo --calibration calibration/demo/calibration.json -o capture/demo/qa
	mkdir -p benchmark/datasets
	$(BIN)/gthd build-dataset capture/demo --calibration calibration/demo/calibration.json -o benchmark/datasets/demo.h5
	$(BIN)/gthd inspect benchmark/datasets/demo.h5 --sheet benchmark/datasets/demo-sheet.png
	$(BIN)/gthd benchmark benchmark/datasets/demo.h5 --profile quick --out benchmark/runs/demo-quick
	@echo "demo: wrote capture/demo (a session captured from the simulated rig; its qa report in capture/demo/qa/), calibration/demo/, benchmark/datasets/demo.h5 (+ demo-sheet.png) and benchmark/runs/demo-quick/ (leaderboard.md, pck.png, qualitative.png, ...)"

test: $(STAMP)
	$(BIN)/python -m pytest -q

# Every perf script runs, even when one misses its goal (exit status 1) or fails; the
# last line names those, and make perf then exits 1. realism.py needs MediaPipe's own
# environment (docs/simulate.md, "Realism check"): without it, it fails with one line.
PERF = simulate.py capture.py sigkill.py calibration.py dataset.py "train.py --profile quick" \
	"infer.py --profile quick" qa.py realism.py

perf: $(STAMP)
	@missed=""; for script in $(PERF); do \
		echo "== perf/$$script"; \
		$(BIN)/python perf/$$script || missed="$$missed, $$script"; \
	done; \
	if [ -n "$$missed" ]; then echo "perf: missed its goal or failed: $${missed#, }"; exit 1; fi; \
	echo "perf: every script met its goal"

clean:
	rm -rf $(VENV) build *.egg-info
