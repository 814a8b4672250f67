"""`python -m entitylabel ...` and `accelerate launch -m entitylabel ...`."""

from .cli import main

main()
