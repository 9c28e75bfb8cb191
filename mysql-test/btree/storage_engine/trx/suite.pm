# mtr loads suite.pm per suite directory, so this sub-suite overlay reuses the
# main overlay's (the start-up warning suppression, see ../suite.pm).
use File::Basename;
my $suite= do(dirname(__FILE__) . "/../suite.pm") or die($@ || "cannot load ../suite.pm: $!");

# xa_recovery suppresses the server's warning for its two prepared transactions;
# with table locks the second one (xa2) cannot insert while the first holds the
# table, prepares with no change and is not kept, so the server finds one (see
# xa_recovery.rdiff). Only that exact message.
push @::global_suppressions, (qr/Found 1 prepared XA transactions/);

$suite;
