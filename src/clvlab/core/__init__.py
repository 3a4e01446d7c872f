"""The bottom layer: errors, time units, atomic output files and progress bars.

Everything else in clvlab may import from here; nothing here imports the rest of clvlab.
"""
