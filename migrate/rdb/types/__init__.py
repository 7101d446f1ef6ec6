"""One module per data type, each covering every encoding of that type. A type reader is a
generator of ``(chunk, elements)``: one chunk for a small value, several bounded chunks for a
big one, so the caller never holds a huge collection at once."""
