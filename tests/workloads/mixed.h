/* The chain of mixed_fp.c and mixed_nofp.c:
 * main -> first_nofp -> second_fp -> spin_nofp. */
int first_nofp(int n);
int second_fp(int n);
int spin_nofp(int n);
