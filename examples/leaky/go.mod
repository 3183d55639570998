module memgov.example/leaky

go 1.19
