import sys
from pathlib import Path

# tests/bruteforce.py and tests/strategies.py are imported by name from every test module.
sys.path.insert(0, str(Path(__file__).parent))
