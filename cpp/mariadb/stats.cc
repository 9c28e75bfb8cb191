/*
  What the optimizer is told: info() (rows, sizes, the key that failed a
  uniqueness check), records(), BTREE's records per key and records_in_range
  estimates, and the costs of scans and reads.
*/
#include "ha_rust.h"

#include <sql_class.h>
#include <key.h>

ha_rows ha_rust::records_in_range(uint inx, const key_range *min_key,
                                  const key_range *max_key, page_range *)
{
  if (layout() != LAYOUT_BTREE)
    return 10;
  using ha_rust_ffi::RangeEnd;
  RangeEnd min_mode= RangeEnd::Unbounded, max_mode= RangeEnd::Unbounded;
  key_buf.clear();
  key_buf2.clear();
  if (min_key)
  {
    key_tuple(inx, min_key->key, min_key->keypart_map, key_buf);
    min_mode= min_key->flag == HA_READ_AFTER_KEY ? RangeEnd::Exclusive
                                                   : RangeEnd::Inclusive;
  }
  if (max_key)
  {
    key_tuple(inx, max_key->key, max_key->keypart_map, key_buf2);
    max_mode= max_key->flag == HA_READ_BEFORE_KEY ? RangeEnd::Exclusive
                                                    : RangeEnd::Inclusive;
  }
  ha_rows n= (ha_rows) (*tbl)->bt_count_range(rust_index_of[inx], sl(key_buf),
                                              min_mode, sl(key_buf2), max_mode);
  /* as InnoDB: never 0, which the optimizer would take for certain (no lock is
     held yet: the range may fill before the statement reads it) */
  return n ? n : 1;
}

ha_rows ha_rust::records()
{
  return (ha_rows) (*tbl)->stats().rows;
}

int ha_rust::info(uint flag)
{
  if (flag & HA_STATUS_ERRKEY)
    errkey= last_dup_key;
  if (tbl && layout() == LAYOUT_BTREE)
  {
    bt_info(flag);
    if (flag & HA_STATUS_AUTO)
    {
      /* the next value, as InnoDB shows it (0, shown as NULL, without a column) */
      stats.auto_increment_value= 0;
      if (table->found_next_number_field)
      {
        bt_autoinc_check();
        stats.auto_increment_value= (*tbl)->bt_auto_increment();
      }
    }
    return 0;
  }
  if (tbl && (flag & HA_STATUS_VARIABLE))
  {
    ha_rust_ffi::Stats s= (*tbl)->stats();
    stats.records= s.rows;
    if (!s.exact && stats.records < 2)
      stats.records= 2;
    stats.deleted= 0;
    stats.data_file_length= s.data_length;
    stats.mean_rec_length= stats.records ? (ulong) (s.data_length / stats.records) : 0;
  }
  if (tbl && (flag & HA_STATUS_AUTO) && layout() == LAYOUT_ARCHIVE)
    stats.auto_increment_value= next_auto_increment();
  return 0;
}

/* ---- statistics (docs/btree-format.md, "Statistics") ---- */

void ha_rust::bt_info(uint flag)
{
  if (flag & (HA_STATUS_VARIABLE | HA_STATUS_CONST))
  {
    ha_rust_ffi::Stats s= (*tbl)->stats();
    stats.records= s.rows;
    /* Never 0 for the optimizer (as InnoDB's info()): it takes a table of 0
       rows for empty and answers "Impossible WHERE" without reading it, so a
       reader would not wait for the lock of a transaction that deleted every
       row (not committed) and would see none (difftest findings #15).
       SHOW TABLE STATUS (HA_STATUS_TIME) shows the real count. */
    if (!stats.records && !(flag & (HA_STATUS_TIME | HA_STATUS_OPEN)))
      stats.records= 1;
    stats.deleted= 0;
    stats.data_file_length= s.data_length;     /* the clustered tree's pages */
    stats.index_file_length= s.index_length;   /* the secondary trees' pages */
    stats.mean_rec_length= s.rows ? (ulong) (s.data_length / s.rows) : 0;
    stats.block_size= RUST_PAGE_SIZE;          /* the page (keyread_time uses it) */
  }
  /* rec_per_key: cheap when nothing changed much (Rust keeps the counts and
     computes them again once a tenth of the entries changed), so it follows the
     data on every statement, not only when the table is opened */
  if (flag & (HA_STATUS_VARIABLE | HA_STATUS_CONST))
    bt_rec_per_key(false);
}

/* A key part's layout as bt_key_stats takes it. */
static ha_rust_ffi::KeyPart key_part_of(uint32_t layout)
{
  ha_rust_ffi::KeyPart p;
  p.length= layout & ~(1U << 31);
  p.nullable= (layout >> 31) != 0;
  return p;
}

/* rec_per_key of every key part, extended parts included (a secondary entry
   ends with the primary key), from the distinct values Rust counts per key
   prefix: exact when an index has few leaves, else a sample of leaves (as
   InnoDB); ANALYZE TABLE samples more. */
void ha_rust::bt_rec_per_key(bool analyze)
{
  uint pk= table->s->primary_key;
  ha_rows rows= stats.records;
  rust::Vec<uint64_t> nd;
  for (uint k= 0; k < table->s->keys; k++)
  {
    KEY *key= table->key_info + k;
    if (!key->rec_per_key)
      continue;
    uint user= key->user_defined_key_parts;
    stat_parts.clear();
    for (uint p= 0; p < user; p++)
      stat_parts.push_back(key_part_of(part_layout(key->key_part + p)));
    if (k != pk && pk != MAX_KEY)
    {
      KEY *pkey= table->key_info + pk;
      for (uint p= 0; p < pkey->user_defined_key_parts; p++)
        stat_parts.push_back(key_part_of(part_layout(pkey->key_part + p)));
    }
    if ((*tbl)->bt_key_stats(rust_index_of[k],
                             rust::Slice<const ha_rust_ffi::KeyPart>(
                                 stat_parts.data(), stat_parts.size()),
                             analyze, nd) || nd.size() != stat_parts.size())
    {
      bt_rc(1);
      continue;    /* keep what was there */
    }
    /* rows per value, then halved as ha_innobase::info_low does ("MySQL seems
       to favor table scans too much over index searches, we pretend index
       selectivity is 2 times better than our estimate"): the optimizer then
       weighs ref access against scans as it does for InnoDB (and SHOW INDEX
       shows about twice the distinct values, as for InnoDB); at least 1 (0 is
       "unknown" to the server) */
    auto rpk= [&](uint64_t n) -> ulong {
      return (ulong) std::max<ha_rows>(1, (n ? rows / n : rows) / 2);
    };
    for (uint p= 0; p < user; p++)
      key->rec_per_key[p]= rpk(nd[p]);
    /* extended parts: the primary key's parts not in the key itself */
    for (uint p= user; p < key->ext_key_parts && pk != MAX_KEY; p++)
    {
      KEY *pkey= table->key_info + pk;
      uint q= 0;
      while (q < pkey->user_defined_key_parts &&
             pkey->key_part[q].fieldnr != key->key_part[p].fieldnr)
        q++;
      key->rec_per_key[p]= q < pkey->user_defined_key_parts
                             ? rpk(nd[user + q]) : 1;
    }
  }
}

/* A full scan reads the clustered tree: its pages, the meta page not counted
   (InnoDB: the clustered index's size in pages). */
double ha_rust::scan_time()
{
  if (layout() != LAYOUT_BTREE)
    return (double) (stats.records + stats.deleted) / 20.0 + 10;
  return std::max(1.0, ulonglong2double(stats.data_file_length) / RUST_PAGE_SIZE - 1);
}

/* Reading `rows` rows over `ranges` ranges: through the clustered tree, the
   share of its pages they fill plus a descent per range; through a secondary
   index, a clustered lookup per row (the handler's default), as InnoDB. */
double ha_rust::read_time(uint index, uint ranges, ha_rows rows)
{
  if (layout() != LAYOUT_BTREE || index != table->s->primary_key)
    return handler::read_time(index, ranges, rows);
  double scan= scan_time();
  ha_rows total= stats.records;
  if (total < rows)
    return scan;
  return ranges + (total ? (double) rows / (double) total * scan : 0.0);
}
