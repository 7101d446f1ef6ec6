"""The wire protocol: RESP encoding and a pipelined command writer."""
