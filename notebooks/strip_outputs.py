"""Remove outputs and execution counts from notebooks (`make strip-notebooks`): notebooks are
kept in git without outputs, and `make test` executes them."""

import sys

import nbformat

for path in sys.argv[1:]:
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        cell.metadata.pop("execution", None)
    notebook.metadata.pop("widgets", None)  # the state of progress bars
    nbformat.write(notebook, path)
