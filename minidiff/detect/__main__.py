import sys

from .experiment import main

if __name__ == "__main__":  # importing the module (as tests that walk the package do) runs nothing
    sys.exit(main())
