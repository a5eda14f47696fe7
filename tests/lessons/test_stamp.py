import nbformat

from lessons.notebooks import code_hash


def notebook(*cells):
    return nbformat.v4.new_notebook(cells=list(cells))


def test_code_hash_follows_code_not_markdown_or_outputs():
    md, code = nbformat.v4.new_markdown_cell("# Lesson"), nbformat.v4.new_code_cell("x = 1")
    base = code_hash(notebook(md, code))
    assert code_hash(notebook(nbformat.v4.new_markdown_cell("# Renamed"), code)) == base
    ran = nbformat.v4.new_code_cell("x = 1", outputs=[nbformat.v4.new_output("stream", text="1")])
    assert code_hash(notebook(md, ran)) == base
    assert code_hash(notebook(md, nbformat.v4.new_code_cell("x = 2"))) != base
    # Moving code between cells changes what ran in which cell: a different hash.
    split = [nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("")]
    assert code_hash(notebook(md, *split)) != base
