/*
  ENGINE_ATTRIBUTE='{"layout": "csv", "csv_header": true, ...}': MySQL has no
  engine-defined table options, so the layout and its options come as one
  flat JSON object (the server checks it is valid JSON before it gets here;
  this reader still refuses anything it does not understand, with a message).
*/
#include "ha_rust.h"

#include <cctype>

namespace {

struct Reader
{
  const char *p, *end;
  std::string *err;

  void ws() { while (p < end && isspace((unsigned char) *p)) p++; }
  bool fail(const std::string &m) { *err= m; return false; }
  bool expect(char c)
  {
    ws();
    if (p < end && *p == c) { p++; return true; }
    return fail(std::string("ENGINE_ATTRIBUTE: expected '") + c + "'");
  }
  bool string(std::string *out)
  {
    ws();
    if (p >= end || *p != '"')
      return fail("ENGINE_ATTRIBUTE: expected a string");
    p++;
    out->clear();
    while (p < end && *p != '"')
    {
      char c= *p++;
      if (c == '\\')
      {
        if (p >= end) break;
        c= *p++;
        switch (c) {
        case 'n': c= '\n'; break;
        case 't': c= '\t'; break;
        case '"': case '\\': case '/': break;
        default: return fail("ENGINE_ATTRIBUTE: unsupported escape \\" + std::string(1, c));
        }
      }
      out->push_back(c);
    }
    if (p >= end)
      return fail("ENGINE_ATTRIBUTE: unterminated string");
    p++;
    return true;
  }
  /* a whole number in [lo, hi] (the range MariaDB's COMPRESSION_LEVEL takes) */
  bool integer(const std::string &key, int lo, int hi, int *out)
  {
    ws();
    long v= 0;
    const char *start= p;
    while (p < end && isdigit((unsigned char) *p) && v <= hi)
      v= v * 10 + (*p++ - '0');
    if (p == start || v < lo || v > hi || (p < end && (isdigit((unsigned char) *p) || *p == '.' || *p == 'e' || *p == 'E')))
      return fail("ENGINE_ATTRIBUTE: \"" + key + "\" must be a whole number from " +
                  std::to_string(lo) + " to " + std::to_string(hi));
    *out= (int) v;
    return true;
  }
  bool boolean(const std::string &key, bool *out)
  {
    ws();
    if (end - p >= 4 && !strncmp(p, "true", 4)) { p+= 4; *out= true; return true; }
    if (end - p >= 5 && !strncmp(p, "false", 5)) { p+= 5; *out= false; return true; }
    return fail("ENGINE_ATTRIBUTE: \"" + key + "\" must be true or false");
  }
};

}  // namespace

bool rust_parse_attributes(const char *text, size_t len, Rust_attributes *out,
                           std::string *err)
{
  Reader r{text, text + len, err};
  r.ws();
  if (r.p == r.end)
    return true;                      /* no ENGINE_ATTRIBUTE: all defaults */
  if (!r.expect('{'))
    return false;
  r.ws();
  if (r.p < r.end && *r.p == '}')
  {
    r.p++;
  }
  else
    for (;;)
    {
      std::string key, value;
      if (!r.string(&key) || !r.expect(':'))
        return false;
      if (key == "layout")
      {
        if (!r.string(&value))
          return false;
        std::string v;
        for (char c : value) v.push_back((char) tolower((unsigned char) c));
        if (v == "btree") out->layout= ha_rust_ffi::LayoutKind::Btree;
        else if (v == "csv") out->layout= ha_rust_ffi::LayoutKind::Csv;
        else if (v == "archive") out->layout= ha_rust_ffi::LayoutKind::Archive;
        else
          return r.fail("ENGINE_ATTRIBUTE: unknown layout \"" + value +
                        "\" (btree, csv or archive)");
      }
      else if (key == "csv_file")
      {
        if (!r.string(&out->csv_file)) return false;
        out->given_file= true;
      }
      else if (key == "csv_separator")
      {
        if (!r.string(&out->csv_separator)) return false;
        out->given_separator= true;
      }
      else if (key == "csv_header")
      {
        if (!r.boolean(key, &out->csv_header)) return false;
        out->given_header= true;
      }
      else if (key == "csv_writable")
      {
        if (!r.boolean(key, &out->csv_writable)) return false;
      }
      else if (key == "compression_level")
      {
        if (!r.integer(key, 0, 22, &out->compression_level)) return false;
      }
      else
        return r.fail("ENGINE_ATTRIBUTE: unknown key \"" + key +
                      "\" (known: layout, csv_file, csv_header, csv_separator, csv_writable, compression_level)");
      r.ws();
      if (r.p < r.end && *r.p == ',') { r.p++; continue; }
      if (!r.expect('}'))
        return false;
      break;
    }
  r.ws();
  if (r.p != r.end)
    return r.fail("ENGINE_ATTRIBUTE: text after the JSON object");
  return true;
}
