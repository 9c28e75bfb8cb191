/*
  Shared by every server family's shim (no server type here): the CSV layout's
  row image as the Rust core reads it (src/ffi/mod.rs, `insert` of a CSV table):
  per stored column one byte of kind (0 NULL, 1 written bare, 2 written quoted),
  the value's length as 4 bytes little-endian, then its bytes.
*/
#pragma once

#include <cstddef>
#include <cstdint>

/* Appends one value to `image`: any string type with append(const char *, size_t)
   (the servers' String). */
template <class Image>
inline void append_value(Image *image, unsigned char kind, const char *p, size_t len)
{
  char hdr[5];
  hdr[0]= (char) kind;
  uint32_t n= (uint32_t) len;
  for (int i= 0; i < 4; i++)
    hdr[1 + i]= (char) ((n >> (8 * i)) & 0xff);
  image->append(hdr, 5);
  if (len)
    image->append(p, len);
}
