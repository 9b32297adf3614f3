module kubedrill.local/sample-app

go 1.22
