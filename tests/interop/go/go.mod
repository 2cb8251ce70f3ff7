module frostamp.invalid/interop/tstparse

go 1.19
