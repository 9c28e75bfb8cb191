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
  return (ha_rows) (*tbl)->bt_count_range(rust_index_of[inx], sl(key_buf),
                                          min_mode, sl(key_buf2), max_mode);
}

ha_rows ha_rust::records()
{
  return (ha_rows) (*tbl)->stats().rows;
}

/* The numbers come from Rust (src/optimizer.rs: BTREE's row count is never 0
   for the optimizer, an estimated count at least 2); rec_per_key follows the
   data on every statement (Rust counts again once a tenth of the entries
   changed). */
int ha_rust::info(uint flag)
{
  if (flag & HA_STATUS_ERRKEY)
    errkey= last_dup_key;
  bool btree= tbl && layout() == LAYOUT_BTREE;
  if (tbl && (flag & (btree ? HA_STATUS_VARIABLE | HA_STATUS_CONST
                            : HA_STATUS_VARIABLE)))
  {
    ha_rust_ffi::Info i= (*tbl)->info(flag & (HA_STATUS_TIME | HA_STATUS_OPEN));
    stats.records= i.records;
    stats.deleted= 0;
    stats.data_file_length= i.data_length;
    stats.index_file_length= i.index_length;
    stats.mean_rec_length= (ulong) i.mean_rec_length;
    if (btree)
    {
      stats.block_size= i.block_size;
      bt_rec_per_key(false);
    }
  }
  if (tbl && (flag & HA_STATUS_AUTO) && layout() != LAYOUT_CSV)
  {
    /* the next value, as InnoDB shows it (0, shown as NULL, without a column) */
    stats.auto_increment_value= 0;
    if (layout() == LAYOUT_ARCHIVE)
      stats.auto_increment_value= next_auto_increment();
    else if (btree && table->found_next_number_field)
    {
      bt_autoinc_check();
      stats.auto_increment_value= (*tbl)->bt_auto_increment();
    }
  }
  return 0;
}

/* rec_per_key of every key part, extended parts included (a secondary entry
   ends with the primary key), from the distinct values Rust counts per key
   prefix: exact when an index has few leaves, else a sample of leaves (as
   InnoDB); ANALYZE TABLE samples more. */
void ha_rust::bt_rec_per_key(bool analyze)
{
  uint pk= table->s->primary_key;
  rust::Vec<uint64_t> rpk;
  for (uint k= 0; k < table->s->keys; k++)
  {
    KEY *key= table->key_info + k;
    if (!key->rec_per_key)
      continue;
    uint user= key->user_defined_key_parts;
    stat_parts.clear();
    for (uint p= 0; p < user; p++)
      stat_parts.push_back(part_layout(key->key_part + p));
    if (k != pk && pk != MAX_KEY)
    {
      KEY *pkey= table->key_info + pk;
      for (uint p= 0; p < pkey->user_defined_key_parts; p++)
        stat_parts.push_back(part_layout(pkey->key_part + p));
    }
    if ((*tbl)->bt_rec_per_key(rust_index_of[k],
                               rust::Slice<const ha_rust_ffi::KeyPart>(
                                   stat_parts.data(), stat_parts.size()),
                               analyze, stats.records, rpk) ||
        rpk.size() != stat_parts.size())
    {
      rust_rc(1);
      continue;    /* keep what was there */
    }
    for (uint p= 0; p < user; p++)
      key->rec_per_key[p]= (ulong) rpk[p];
    /* extended parts: the primary key's parts not in the key itself */
    for (uint p= user; p < key->ext_key_parts && pk != MAX_KEY; p++)
    {
      KEY *pkey= table->key_info + pk;
      uint q= 0;
      while (q < pkey->user_defined_key_parts &&
             pkey->key_part[q].fieldnr != key->key_part[p].fieldnr)
        q++;
      key->rec_per_key[p]= q < pkey->user_defined_key_parts
                             ? (ulong) rpk[user + q] : 1;
    }
  }
}

/* Costs: src/optimizer.rs. Through a secondary index, a clustered lookup per
   row (the handler's default), as InnoDB. */
double ha_rust::scan_time()
{
  return (*tbl)->scan_cost(stats.records + stats.deleted, stats.data_file_length);
}

double ha_rust::read_time(uint index, uint ranges, ha_rows rows)
{
  if (layout() != LAYOUT_BTREE || index != table->s->primary_key)
    return handler::read_time(index, ranges, rows);
  return ha_rust_ffi::primary_read_cost(scan_time(), stats.records, ranges, rows);
}
