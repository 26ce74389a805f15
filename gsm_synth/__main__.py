from .cli import main
from .entry import run

run(main)
