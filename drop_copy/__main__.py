import sys

from drop_copy.process import main

sys.exit(main())
