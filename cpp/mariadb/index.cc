/*
  Index reads: index_flags, index_init/end, index_read_map and the moves from
  the current entry (next, prev, first, last, next_same), index-only reads and
  index condition pushdown. BTREE reads through its memcomparable keys
  (keys.cc); ARCHIVE has one index, on its AUTO_INCREMENT column, for equality
  lookups.
*/
#include "ha_rust.h"

#include <sql_class.h>
#include <key.h>

ulong ha_rust::index_flags(uint inx, uint part, bool all_parts) const
{
  if (layout() != LAYOUT_BTREE)
    return HA_ONLY_WHOLE_INDEX;
  ulong flags= HA_READ_NEXT | HA_READ_PREV | HA_READ_RANGE | HA_READ_ORDER;
  if (!table_share || !table_share->key_info || inx >= table_share->keys)
    return flags;
  KEY *k= table_share->key_info + inx;
  /* the clustered tree holds whole rows: reading it "index only" gives every
     column. Known by its name: while the server builds the share (and asks
     which keys can be read index only), table_share->primary_key is not set
     yet. */
  if (k->name.str && !strcmp(k->name.str, "PRIMARY"))
    return flags | HA_CLUSTERED_INDEX | HA_KEYREAD_ONLY;
  /* A secondary index can be read index only for the parts asked about when
     each can be decoded from its memcomparable bytes (integers, dates, ...:
     see rust_key_part_decodable; strings from tree format 5). While the share is being
     built the parts after `part` have no field yet: only those asked about
     are looked at. The primary key's columns, at the end of every entry, are
     offered through HA_PRIMARY_KEY_IN_READ_INDEX (table_flags). */
  bool decodable= part < k->user_defined_key_parts;
  for (uint p= all_parts ? 0 : part; p <= part && p < k->user_defined_key_parts; p++)
  {
    /* a prefix key part cannot give the order of the whole value; nor, for
       the server, can a BIT part: the GROUP BY it would read in index order
       copies a BIT's group value without the bits kept among the null bits
       (MyISAM and Aria give wrong groups there too; InnoDB keeps no BIT bits
       there and sorts) */
    if ((k->key_part[p].key_part_flag & HA_PART_KEY_SEG) ||
        (k->key_part[p].field && k->key_part[p].field->type() == MYSQL_TYPE_BIT))
      flags&= ~HA_READ_ORDER;
    if (!rust_key_part_decodable(k->key_part + p, key_format))
      decodable= false;
  }
  /* Index condition pushdown (asked with all_parts, once the share is built):
     when every part of the key decodes, the pushed condition is tested on the
     entry before its row is read (bt_fetch). */
  if (all_parts && part == 0 && decodable)
  {
    bool icp= true;
    for (uint p= 0; p < k->user_defined_key_parts && icp; p++)
      icp= k->key_part[p].field && rust_key_part_decodable(k->key_part + p, key_format);
    if (icp)
      flags|= HA_DO_INDEX_COND_PUSHDOWN;
  }
  return decodable ? flags | HA_KEYREAD_ONLY : flags;
}

/* An integer as an order-preserving unsigned 64-bit number. */
static uint64_t ordered_key(Field *f, longlong v)
{
  return (f->flags & UNSIGNED_FLAG) ? (uint64_t) v : ((uint64_t) v ^ (1ULL << 63));
}

/* The ARCHIVE index key of a row, order-preserving as an unsigned 64-bit
   number (signed values have their sign bit flipped). */
uint64_t ha_rust::key_of(const uchar *record, bool *keyed, bool *unique)
{
  *keyed= table->s->keys > 0;
  *unique= *keyed && (table->key_info[0].flags & HA_NOSAME);
  if (!*keyed)
    return 0;
  Field *f= table->key_info[0].key_part[0].field;
  return ordered_key(f, f->val_int(record + f->offset(table->record[0])));
}

/* ARCHIVE point lookups (HA_ONLY_WHOLE_INDEX: equality on the whole key). */
int ha_rust::index_read_map(uchar *buf, const uchar *key,
                            key_part_map keypart_map,
                            enum ha_rkey_function find_flag)
{
  if (layout() == LAYOUT_BTREE)
    return bt_index_read(buf, key, keypart_map, find_flag);
  if (find_flag != HA_READ_KEY_EXACT)
    return HA_ERR_WRONG_COMMAND;
  KEY_PART_INFO *kp= table->key_info[active_index].key_part;
  if (kp->null_bit)
  {
    if (*key)                     /* key IS NULL: never stored */
      return HA_ERR_KEY_NOT_FOUND;
    key++;
  }
  Field *f= kp->field;
  if (int rc= (*tbl)->lookup(ordered_key(f, f->val_int(key))))
    return rust_rc(rc);
  int rc= index_next(buf);
  return rc == HA_ERR_END_OF_FILE ? HA_ERR_KEY_NOT_FOUND : rc;
}

int ha_rust::index_next(uchar *buf)
{
  if (layout() == LAYOUT_BTREE)
  {
    int rc= (*tbl)->bt_next(scan_desc);
    scan_desc= false;
    return bt_fetch(buf, rc, true);
  }
  int rc= (*tbl)->scan_next();
  if (rc)
    return rc == HA_ERR_END_OF_FILE ? rc : rust_rc(rc);
  return fetch_row(buf, nullptr) ? HA_ERR_WRONG_IN_RECORD : 0;
}

int ha_rust::index_next_same(uchar *buf, const uchar *key, uint keylen)
{
  /* entries the pushed condition skips must not run past the key */
  icp_same_key= key;
  icp_same_len= keylen;
  /* BTREE: the entries must start with the key's memcomparable bytes (Rust
     stops at the first that does not). Not a comparison of the row's fields:
     the server computes a virtual column only after this returns, so an index
     on one would end after the first row (difftest btree seed 22). */
  bool prefix= false;
  if (layout() == LAYOUT_BTREE)
  {
    KEY *k= table->key_info + active_index;
    key_part_map map= 0;
    uint len= 0;
    for (uint i= 0; i < k->user_defined_key_parts && len < keylen; i++)
    {
      len+= k->key_part[i].store_length;
      map|= (key_part_map) 1 << i;
    }
    if (len == keylen)
    {
      /* built once per lookup: the server passes the same key for each row */
      if (same_index != active_index || same_raw.size() != keylen ||
          memcmp(same_raw.data(), key, keylen))
      {
        same_raw.assign((const char *) key, keylen);
        same_index= active_index;
        key_tuple(active_index, key, map, same_buf);
      }
      (*tbl)->bt_set_prefix(sl(same_buf), true);
      prefix= true;
    }
  }
  int rc= index_next(buf);
  icp_same_key= nullptr;
  if (prefix)
    (*tbl)->bt_set_prefix(rust::Slice<const uint8_t>(), false);
  else if (!rc && layout() == LAYOUT_BTREE &&
           key_cmp_if_same(table, key, active_index, keylen))
    rc= HA_ERR_END_OF_FILE;
  return rc;
}

int ha_rust::index_prev(uchar *buf)
{
  if (layout() != LAYOUT_BTREE)
    return HA_ERR_WRONG_COMMAND;
  int rc= (*tbl)->bt_next(!scan_desc);
  scan_desc= true;
  return bt_fetch(buf, rc, true);
}

int ha_rust::index_first(uchar *buf) { return index_edge(buf, false); }
int ha_rust::index_last(uchar *buf) { return index_edge(buf, true); }

/* index_first, index_last: the active index's first or last entry. */
int ha_rust::index_edge(uchar *buf, bool last)
{
  if (layout() != LAYOUT_BTREE)
    return HA_ERR_WRONG_COMMAND;
  scan_desc= last;
  bt_key_only_start();
  return bt_fetch(buf, (*tbl)->bt_edge(trx(), rust_index_of[active_index], last),
                  true);
}

int ha_rust::index_init(uint idx, bool sorted)
{
  active_index= idx;
  return 0;
}

int ha_rust::index_end()
{
  active_index= MAX_KEY;
  if (layout() == LAYOUT_BTREE)
    return 0;
  return rust_rc((*tbl)->scan_end());
}

/* Decides, when an index read starts, whether it reads entries only: the
   server asked for keyread on this (secondary) index, and every column it
   reads can be decoded from the entry (a safety net: the optimizer only asks
   for such columns, see index_flags). */
bool ha_rust::bt_key_only_start()
{
  key_only= false;
  /* the pushed condition is tested on the entry (decoded into record[0]),
     the row read only for entries that pass */
  icp= pushed_idx_cond && pushed_idx_cond_keyno == active_index &&
       active_index < table->s->keys && rust_index_of[active_index] != 0;
  if (keyread_enabled() && keyread == active_index &&
      active_index < table->s->keys && rust_index_of[active_index] != 0)
  {
    key_only= true;
    size_t base= (size_t) active_index * table->s->fields;
    for (uint i= 0; i < table->s->fields && key_only; i++)
      if (bitmap_is_set(table->read_set, i) && !keyread_cols[base + i])
        key_only= false;
  }
  (*tbl)->bt_set_keys_only(key_only || icp);
  return key_only;
}

/* Index condition pushdown: taken when the key is a secondary one whose every
   part decodes (index_flags offers HA_DO_INDEX_COND_PUSHDOWN only then; the
   server pushes only conditions on the key's columns, and the primary key's
   when HA_PRIMARY_KEY_IN_READ_INDEX says they decode too). */
Item *ha_rust::idx_cond_push(uint keyno, Item *idx_cond)
{
  if (layout() != LAYOUT_BTREE || keyno >= table->s->keys ||
      keyno >= rust_index_of.size() || rust_index_of[keyno] == 0 ||
      !(index_flags(keyno, 0, true) & HA_DO_INDEX_COND_PUSHDOWN))
    return idx_cond;
  pushed_idx_cond= idx_cond;
  pushed_idx_cond_keyno= keyno;
  in_range_check_pushed_down= false;  /* the server checks the range's end */
  return NULL;
}

int ha_rust::bt_index_read(uchar *buf, const uchar *key, key_part_map map,
                           enum ha_rkey_function find_flag)
{
  using ha_rust_ffi::FindMode;
  FindMode find;
  switch (find_flag) {
  case HA_READ_KEY_EXACT: case HA_READ_PREFIX: find= FindMode::Exact; break;
  case HA_READ_KEY_OR_NEXT: find= FindMode::KeyOrNext; break;
  case HA_READ_KEY_OR_PREV: find= FindMode::KeyOrPrev; break;
  case HA_READ_AFTER_KEY: find= FindMode::AfterKey; break;
  case HA_READ_BEFORE_KEY: find= FindMode::BeforeKey; break;
  case HA_READ_PREFIX_LAST: find= FindMode::PrefixLast; break;
  case HA_READ_PREFIX_LAST_OR_PREV: find= FindMode::PrefixLastOrPrev; break;
  default: return HA_ERR_WRONG_COMMAND;
  }
  key_tuple(active_index, key, map, key_buf);
  bt_key_only_start();
  int rc= (*tbl)->bt_seek(trx(), rust_index_of[active_index], sl(key_buf), find);
  scan_desc= find == FindMode::KeyOrPrev || find == FindMode::BeforeKey ||
             find == FindMode::PrefixLast || find == FindMode::PrefixLastOrPrev;
  /* the prefix bounds the first row (and the entries a pushed condition
     skips before it); after it the server bounds ranges itself */
  rc= bt_fetch(buf, rc, true);
  (*tbl)->bt_set_prefix(rust::Slice<const uint8_t>(), false);
  return rc == HA_ERR_END_OF_FILE ? HA_ERR_KEY_NOT_FOUND : rc;
}
