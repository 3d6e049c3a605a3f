module example.com/seed-app

go 1.22
