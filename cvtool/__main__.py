from cvtool.cli import main

main()
