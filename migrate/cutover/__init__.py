"""The cut-over: a short, bounded write pause on the source, the target brought to the
source's final offset, verified, promoted, and the old primary fenced so that a client that
has not switched gets an error instead of a silent OK (gh-ost's cut-over, adapted)."""
