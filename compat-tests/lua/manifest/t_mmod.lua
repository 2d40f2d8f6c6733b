-- t_mmod: a module for t_manifest's require (t_manifest copies it under another name).
return 42
