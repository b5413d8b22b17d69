// Linked with every object of one core module (--whole-archive) and only the
// modules it declares (core/CMakeLists.txt): it builds only when the module
// calls nothing outside them. It is never run.
int main()
{
    return 0;
}
