# mtr loads suite.pm per suite directory, so this sub-suite overlay reuses the
# main overlay's (the start-up warning suppression, see ../suite.pm).
use File::Basename;
do(dirname(__FILE__) . "/../suite.pm") or die($@ || "cannot load ../suite.pm: $!");
