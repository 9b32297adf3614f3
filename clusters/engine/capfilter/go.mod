module kubedrill.local/capfilter

go 1.22
