from aiops.cli import main

main()
