import sys
from pathlib import Path

# ci/ holds scripts, not a package: make make_env and e2elib importable as the scripts see them
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
